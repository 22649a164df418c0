/**
 * Stand-ins for the `vscode` module and `vscode-languageclient/node`, just enough
 * of them for extension.ts and view.ts to run under `node --test`: every call the
 * extension makes is recorded, and the answers are the test's to script.
 */

import Module from "node:module";

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly authority: string,
    readonly path: string,
    readonly query: string,
  ) {}

  static parse(text: string): Uri {
    const m = /^([a-z][a-z0-9+.-]*):(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?/i.exec(text);
    if (!m) {
      throw new Error(`not a URI: ${text}`);
    }
    return new Uri(m[1], m[2] ?? "", decodeURIComponent(m[3]), m[4] ?? "");
  }

  static from(parts: { scheme: string; authority?: string; path?: string; query?: string }): Uri {
    return new Uri(parts.scheme, parts.authority ?? "", parts.path ?? "", parts.query ?? "");
  }

  with(change: { query?: string; path?: string }): Uri {
    return new Uri(this.scheme, this.authority, change.path ?? this.path, change.query ?? this.query);
  }

  toString(): string {
    const authority = this.scheme === "file" || this.authority ? `//${this.authority}` : "";
    return `${this.scheme}:${authority}${encodeURI(this.path)}${this.query ? `?${this.query}` : ""}`;
  }
}

export class EventEmitter<T> {
  private listeners: ((value: T) => void)[] = [];
  readonly event = (listener: (value: T) => void): { dispose(): void } => {
    this.listeners.push(listener);
    return { dispose: () => (this.listeners = this.listeners.filter((l) => l !== listener)) };
  };
  fire(value: T): void {
    this.listeners.forEach((l) => l(value));
  }
  dispose(): void {
    this.listeners = [];
  }
}

export class TreeItem {
  id?: string;
  description?: string;
  tooltip?: string;
  iconPath?: unknown;
  contextValue?: string;
  command?: { command: string; title: string; arguments?: unknown[] };
  resourceUri?: Uri;
  constructor(
    readonly label: string,
    readonly collapsibleState: number,
  ) {}
}

export class ThemeIcon {
  constructor(
    readonly id: string,
    readonly color?: ThemeColor,
  ) {}
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

class TabInputTextDiff {
  constructor(
    readonly original: Uri,
    readonly modified: Uri,
  ) {}
}

export interface FakeDocument {
  uri: Uri;
  languageId: string;
  version: number;
  getText(): string;
  lineAt(line: number): { text: string };
}

export function document(uri: string, text: string, version = 1, languageId = "ocaml"): FakeDocument {
  return {
    uri: Uri.parse(uri),
    languageId,
    version,
    getText: () => text,
    lineAt: (line: number) => ({ text: text.split("\n")[line] ?? "" }),
  };
}

export interface Position {
  line: number;
  character: number;
}

/** Everything the fake editor saw, and what it answers. */
export class Editor {
  commands = new Map<string, (...args: any[]) => any>();
  executed: { command: string; args: unknown[] }[] = [];
  messages: { severity: string; text: string }[] = [];
  applied: unknown[] = [];
  applyResult = true;
  settings: Record<string, unknown> = { serverCommand: ["ocaml-ai-ls", "--x"], candidates: 3, settings: {} };
  inputs: (string | undefined)[] = [];
  inputOptions: any[] = [];
  activeTextEditor: { document: FakeDocument; selection: any } | undefined;
  textDocuments: FakeDocument[] = [];
  files = new Map<string, string>();
  contentProviders = new Map<string, any>();
  treeViews: any[] = [];
  revealed: unknown[] = [];
  closedTabs: unknown[] = [];
  tabs: { input: unknown }[] = [];
  configListeners: ((event: { affectsConfiguration(section: string): boolean }) => any)[] = [];
  cancelProgress = false;

  open(doc: FakeDocument, selection?: { start: Position; end: Position; active?: Position }): void {
    const start = selection?.start ?? { line: 0, character: 0 };
    const end = selection?.end ?? start;
    this.textDocuments = [...this.textDocuments.filter((d) => d.uri.toString() !== doc.uri.toString()), doc];
    this.activeTextEditor = {
      document: doc,
      selection: {
        start,
        end,
        active: selection?.active ?? end,
        isEmpty: start.line === end.line && start.character === end.character,
      },
    };
  }

  async run(command: string, ...args: unknown[]): Promise<any> {
    const handler = this.commands.get(command);
    if (!handler) {
      throw new Error(`no command ${command}`);
    }
    return handler(...args);
  }

  async changeSettings(key: string, value: unknown): Promise<void> {
    this.settings[key] = value;
    for (const listener of this.configListeners) {
      await listener({ affectsConfiguration: (section: string) => section === `ocamlAi.${key}` || section === "ocamlAi" });
    }
  }

  /** The text a preview URI shows, as VS Code would ask the content provider. */
  async previewText(uri: Uri): Promise<string> {
    return this.contentProviders.get(uri.scheme).provideTextDocumentContent(uri);
  }

  diffs(): { left: Uri; right: Uri; title: string }[] {
    return this.executed
      .filter((e) => e.command === "vscode.diff")
      .map((e) => ({ left: e.args[0] as Uri, right: e.args[1] as Uri, title: e.args[2] as string }));
  }

  module(): any {
    const editor = this;
    const message =
      (severity: string) =>
      async (text: string): Promise<undefined> => {
        editor.messages.push({ severity, text });
        return undefined;
      };
    return {
      Uri,
      EventEmitter,
      TreeItem,
      ThemeIcon,
      ThemeColor,
      TabInputTextDiff,
      TreeItemCollapsibleState: { None: 0, Collapsed: 1, Expanded: 2 },
      ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
      commands: {
        registerCommand(command: string, handler: (...args: any[]) => any) {
          editor.commands.set(command, handler);
          return { dispose: () => editor.commands.delete(command) };
        },
        async executeCommand(command: string, ...args: unknown[]) {
          editor.executed.push({ command, args });
          return undefined;
        },
      },
      window: {
        get activeTextEditor() {
          return editor.activeTextEditor;
        },
        showErrorMessage: message("error"),
        showWarningMessage: message("warning"),
        showInformationMessage: message("info"),
        setStatusBarMessage(text: string) {
          editor.messages.push({ severity: "status", text });
          return { dispose() {} };
        },
        async showInputBox(options: any) {
          editor.inputOptions.push(options);
          return editor.inputs.shift();
        },
        async withProgress(_options: unknown, task: (progress: any, token: any) => Promise<unknown>) {
          const token = {
            isCancellationRequested: editor.cancelProgress,
            onCancellationRequested: () => ({ dispose() {} }),
          };
          return task({ report() {} }, token);
        },
        createTreeView(id: string, options: { treeDataProvider: any }) {
          const view = {
            id,
            provider: options.treeDataProvider,
            selection: [] as unknown[],
            async reveal(node: unknown) {
              editor.revealed.push(node);
            },
            dispose() {},
          };
          editor.treeViews.push(view);
          return view;
        },
        tabGroups: {
          get all() {
            return [{ tabs: editor.tabs }];
          },
          async close(tabs: unknown[]) {
            editor.closedTabs.push(...tabs);
            editor.tabs = editor.tabs.filter((t) => !tabs.includes(t));
            return true;
          },
        },
      },
      workspace: {
        getConfiguration(section?: string) {
          return {
            get: (key: string, fallback?: unknown) =>
              section === "ocamlAi" && key in editor.settings ? editor.settings[key] : fallback,
          };
        },
        onDidChangeConfiguration(listener: (event: any) => any) {
          editor.configListeners.push(listener);
          return { dispose() {} };
        },
        registerTextDocumentContentProvider(scheme: string, provider: unknown) {
          editor.contentProviders.set(scheme, provider);
          return { dispose: () => editor.contentProviders.delete(scheme) };
        },
        get textDocuments() {
          return editor.textDocuments;
        },
        fs: {
          async readFile(uri: Uri) {
            const text = editor.files.get(uri.toString());
            if (text === undefined) {
              throw new Error(`ENOENT ${uri.toString()}`);
            }
            return new TextEncoder().encode(text);
          },
        },
        async applyEdit(edit: unknown) {
          editor.applied.push(edit);
          return editor.applyResult;
        },
      },
    };
  }
}

/** The language client: records what is sent, answers `workspace/executeCommand` with `answer`. */
export class Server {
  clients: any[] = [];
  requests: { method: string; params: any }[] = [];
  notifications: { method: string; params: any }[] = [];
  startError: Error | undefined;
  answer: (params: any) => unknown = () => null;

  get client(): any {
    return this.clients[this.clients.length - 1];
  }

  executed(command: string): any[] {
    return this.requests
      .filter((r) => r.method === "workspace/executeCommand" && r.params.command === command)
      .map((r) => r.params.arguments[0]);
  }

  module(): any {
    const server = this;
    class LanguageClient {
      running = false;
      stopped = false;
      readonly outputChannel = { lines: [] as string[], appendLine: (line: string) => this.outputChannel.lines.push(line) };
      readonly code2ProtocolConverter = { asUri: (uri: Uri) => uri.toString() };
      readonly protocol2CodeConverter = { asWorkspaceEdit: async (edit: unknown) => ({ converted: edit }) };
      constructor(
        readonly id: string,
        readonly name: string,
        readonly serverOptions: any,
        readonly clientOptions: any,
      ) {
        server.clients.push(this);
      }
      async start(): Promise<void> {
        if (server.startError) {
          throw server.startError;
        }
        this.running = true;
      }
      async stop(): Promise<void> {
        this.running = false;
        this.stopped = true;
      }
      isRunning(): boolean {
        return this.running;
      }
      async sendRequest(type: { method: string }, params: any, token?: { isCancellationRequested: boolean }) {
        server.requests.push({ method: type.method, params });
        if (token?.isCancellationRequested) {
          throw new Error("Canceled");
        }
        return server.answer(params);
      }
      async sendNotification(type: { method: string }, params: any) {
        server.notifications.push({ method: type.method, params });
      }
    }
    return {
      LanguageClient,
      TransportKind: { stdio: 0, ipc: 1, pipe: 2, socket: 3 },
      ExecuteCommandRequest: { type: { method: "workspace/executeCommand" } },
      DidChangeConfigurationNotification: { type: { method: "workspace/didChangeConfiguration" } },
    };
  }
}

/**
 * Load extension.ts with the fakes in place of `vscode` and the language client
 * (a fresh copy each time, so each test has its own module state).
 */
export function loadExtension(editor: Editor, server: Server): any {
  const fakes: Record<string, unknown> = {
    vscode: editor.module(),
    "vscode-languageclient/node": server.module(),
  };
  const mod = Module as any;
  const original = mod._load;
  mod._load = function (request: string, ...rest: unknown[]) {
    return request in fakes ? fakes[request] : original.call(this, request, ...rest);
  };
  try {
    for (const name of ["../extension", "../view"]) {
      delete require.cache[require.resolve(name)];
    }
    return require("../extension");
  } finally {
    mod._load = original;
  }
}
