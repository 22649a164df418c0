/**
 * OCaml AI for VS Code: starts `ocaml-ai-ls` for OCaml files (code actions come
 * from it as from any language server) and adds "OCaml AI: Edit…", which asks
 * the server for several candidates, shows them with their verification status
 * and a diff preview, and applies the one the user picks.
 */

import * as vscode from "vscode";
import {
  CancellationToken,
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from "vscode-languageclient/node";

import {
  CandidateSession,
  FEEDBACK_COMMAND,
  FeedbackArguments,
  GENERATE_COMMAND,
  PREVIEW_SCHEME,
  candidateNewText,
  didChangeConfigurationParams,
  generateArguments,
  instructionFromLine,
  isSettingsSection,
  parseGenerateResult,
  parsePreviewQuery,
  previewQuery,
  resultMessage,
  sameUri,
  serverExecutable,
  settingsObject,
  staleDocuments,
  startFailureMessage,
  validateInstruction,
} from "./candidates";
import { CandidatesProvider, Node, PREVIEW_COMMAND, VIEW_ID } from "./view";

const LANGUAGES = ["ocaml", "ocaml.interface"];

let client: LanguageClient | undefined;
let clientCommand: string[] = [];

function config(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration("ocamlAi");
}

function log(message: string): void {
  client?.outputChannel.appendLine(`[ocaml-ai] ${message}`);
}

async function startClient(): Promise<void> {
  const setting = config().get<unknown>("serverCommand", ["ocaml-ai-ls"]);
  let exe: { command: string; args: string[] };
  try {
    exe = serverExecutable(setting);
  } catch (error) {
    void vscode.window.showErrorMessage(`OCaml AI: ${(error as Error).message}`);
    return;
  }
  clientCommand = [exe.command, ...exe.args];
  const serverOptions: ServerOptions = {
    command: exe.command,
    args: exe.args,
    transport: TransportKind.stdio,
  };
  const clientOptions: LanguageClientOptions = {
    // Only files: the previews (scheme `ocaml-ai`) are OCaml too, but not the server's business.
    documentSelector: LANGUAGES.map((language) => ({ scheme: "file", language })),
    initializationOptions: settingsObject(config().get("settings")),
    middleware: {
      workspace: {
        // The server pulls its section, "ocaml-ai"; the settings live in `ocamlAi.settings`.
        configuration: async (params, token, next) => {
          const answers = await next(params, token);
          if (!Array.isArray(answers)) {
            return answers;
          }
          const settings = settingsObject(config().get("settings"));
          return answers.map((answer, i) => (isSettingsSection(params.items[i]?.section) ? settings : answer));
        },
      },
    },
  };
  const created = new LanguageClient("ocamlAi", "OCaml AI", serverOptions, clientOptions);
  client = created;
  try {
    await created.start();
  } catch (error) {
    void vscode.window.showErrorMessage(startFailureMessage(clientCommand, error));
    log(`the server did not start: ${String(error)}`);
  }
}

async function stopClient(): Promise<void> {
  const running = client;
  client = undefined;
  if (running) {
    try {
      await running.stop();
    } catch {
      // it may never have started
    }
  }
}

function runningClient(): LanguageClient | undefined {
  if (!client || !client.isRunning()) {
    void vscode.window.showErrorMessage(
      `OCaml AI: the language server is not running (\`${clientCommand.join(" ")}\`); ` +
        "see the “OCaml AI” output, or run “OCaml AI: Restart Server”.",
    );
    return undefined;
  }
  return client;
}

/** The view, the previews and the commands around one result at a time. */
class Candidates {
  readonly provider = new CandidatesProvider();
  readonly view: vscode.TreeView<Node>;
  private readonly previewChanged = new vscode.EventEmitter<vscode.Uri>();

  constructor(context: vscode.ExtensionContext) {
    this.view = vscode.window.createTreeView(VIEW_ID, { treeDataProvider: this.provider });
    const previews: vscode.TextDocumentContentProvider = {
      onDidChange: this.previewChanged.event,
      provideTextDocumentContent: (uri) => this.previewText(uri),
    };
    context.subscriptions.push(
      this.view,
      this.provider,
      this.previewChanged,
      vscode.workspace.registerTextDocumentContentProvider(PREVIEW_SCHEME, previews),
      vscode.commands.registerCommand("ocamlAi.edit", () => this.edit()),
      vscode.commands.registerCommand(PREVIEW_COMMAND, (node?: Node, uri?: string) => this.preview(node, uri)),
      vscode.commands.registerCommand("ocamlAi.apply", (node?: Node) => this.apply(node)),
      vscode.commands.registerCommand("ocamlAi.reject", (node?: Node) => this.reject(node)),
      vscode.commands.registerCommand("ocamlAi.dismiss", () => this.dismiss()),
    );
  }

  private get session(): CandidateSession | undefined {
    return this.provider.session;
  }

  private async edit(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor || !LANGUAGES.includes(editor.document.languageId) || editor.document.uri.scheme !== "file") {
      void vscode.window.showWarningMessage("OCaml AI: open an OCaml file (.ml or .mli) first.");
      return;
    }
    const running = runningClient();
    if (!running) {
      return;
    }
    const doc = editor.document;
    const instruction = await vscode.window.showInputBox({
      title: "OCaml AI: Edit…",
      prompt: editor.selection.isEmpty ? "What should change here?" : "What should change in the selection?",
      placeHolder: "e.g. make this tail recursive",
      value: instructionFromLine(doc.lineAt(editor.selection.active.line).text),
      ignoreFocusOut: true,
      validateInput: validateInstruction,
    });
    if (instruction === undefined) {
      return;
    }
    const sel = editor.selection;
    const args = generateArguments(
      running.code2ProtocolConverter.asUri(doc.uri),
      { start: sel.start, end: sel.end },
      instruction,
      config().get("candidates"),
    );
    // A new request replaces candidates the user has not decided on.
    await this.sendFeedback(this.session?.dismiss());
    await this.show(undefined);

    let raw: unknown;
    try {
      raw = await vscode.window.withProgress(
        {
          location: vscode.ProgressLocation.Notification,
          title: `OCaml AI: ${args.instruction}`,
          cancellable: true,
        },
        (progress, token) => {
          progress.report({ message: `asking for ${args.candidates} candidate${args.candidates === 1 ? "" : "s"}…` });
          return running.sendRequest(
            ExecuteCommandRequest.type,
            { command: GENERATE_COMMAND, arguments: [args] },
            token as CancellationToken,
          );
        },
      );
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (/cancel/i.test(message)) {
        void vscode.window.showInformationMessage("OCaml AI: cancelled.");
      } else {
        void vscode.window.showErrorMessage(`OCaml AI: ${message}`);
      }
      return;
    }
    let result;
    try {
      result = parseGenerateResult(raw);
    } catch (error) {
      void vscode.window.showErrorMessage(`OCaml AI: ${(error as Error).message}`);
      return;
    }
    log(
      `result ${result.id}: ${result.candidates.length} candidate(s), ${result.rejected.length} rejected` +
        (result.model ? `, model ${result.model}` : ""),
    );
    const message = resultMessage(result);
    if (message?.severity === "error") {
      void vscode.window.showErrorMessage(message.text);
    } else if (message?.severity === "warning") {
      void vscode.window.showWarningMessage(message.text);
    } else if (message) {
      void vscode.window.showInformationMessage(message.text);
    }
    if (result.candidates.length === 0) {
      return;
    }
    const first = await this.show(new CandidateSession(result));
    if (first) {
      await this.view.reveal(first, { select: true, focus: false });
      await this.preview(first);
    }
  }

  private async show(session: CandidateSession | undefined): Promise<Node | undefined> {
    const first = this.provider.show(session);
    if (!first) {
      await this.closePreviews();
    }
    return first;
  }

  /** The candidate a command is about: its argument, else the selected one, else the best. */
  private node(node: Node | undefined): Node | undefined {
    return node ?? this.view.selection[0] ?? this.provider.getChildren()[0];
  }

  private previewUris(node: Node, fileUri: string): [vscode.Uri, vscode.Uri] {
    const file = vscode.Uri.parse(fileUri);
    const right = vscode.Uri.from({
      scheme: PREVIEW_SCHEME,
      path: file.path,
      query: previewQuery({ result: node.resultId, candidate: node.item.index, file: fileUri }),
    });
    const created = node.item.files.find((f) => f.uri === fileUri)?.created ?? false;
    // A new file has no left side on disk: compare with an empty preview.
    const left = created ? right.with({ query: previewQuery({ result: "", candidate: 0, file: fileUri }) }) : file;
    return [left, right];
  }

  private async preview(node?: Node, fileUri?: string): Promise<void> {
    const target = this.node(node);
    if (!target) {
      return;
    }
    const uri = fileUri ?? (target.kind === "file" ? target.file.uri : target.item.files[0]?.uri);
    if (!uri) {
      return;
    }
    const [left, right] = this.previewUris(target, uri);
    const name = uri.slice(uri.lastIndexOf("/") + 1);
    const title = `${decodeURIComponent(name)} ↔ candidate ${target.item.rank} (${target.item.description})`;
    await vscode.commands.executeCommand("vscode.diff", left, right, title, {
      preview: true,
      preserveFocus: true,
    });
  }

  /** The text of a preview document: the file as it is now, with the candidate's edit. */
  private async previewText(uri: vscode.Uri): Promise<string> {
    const ref = parsePreviewQuery(uri.query);
    if (!ref || ref.result === "") {
      return "";
    }
    const session = this.session;
    const candidate = session && session.result.id === ref.result ? session.candidate(ref.candidate) : undefined;
    if (!candidate) {
      return "(this candidate is no longer on offer: run “OCaml AI: Edit…” again)\n";
    }
    const old = await currentText(ref.file);
    try {
      const text = candidateNewText(candidate.edit, ref.file, old);
      return text === null ? "(the candidate deletes this file)\n" : (text ?? old);
    } catch (error) {
      return `(the candidate's edit does not apply to the current text: ${(error as Error).message})\n`;
    }
  }

  private async apply(node?: Node): Promise<void> {
    const target = this.node(node);
    const session = this.session;
    const candidate = target && session?.candidate(target.item.index);
    if (!target || !session || !candidate) {
      return;
    }
    const running = runningClient();
    if (!running) {
      return;
    }
    const stale = staleDocuments(candidate.edit, (uri) => {
      const doc = vscode.workspace.textDocuments.find((d) => sameUri(d.uri.toString(), uri));
      return doc?.version;
    });
    if (stale.length > 0) {
      void vscode.window.showWarningMessage(
        "OCaml AI: the file changed since the candidates were made; run “OCaml AI: Edit…” again.",
      );
      return;
    }
    const edit = await running.protocol2CodeConverter.asWorkspaceEdit(candidate.edit);
    const applied = await vscode.workspace.applyEdit(edit);
    if (!applied) {
      void vscode.window.showErrorMessage("OCaml AI: the editor refused the edit; nothing was changed.");
      return;
    }
    await this.sendFeedback(session.accept(target.item.index));
    await this.show(undefined);
    void vscode.window.setStatusBarMessage(
      `OCaml AI: applied candidate ${target.item.rank} (${target.item.description})`,
      5000,
    );
  }

  private async reject(node?: Node): Promise<void> {
    const target = this.node(node);
    const session = this.session;
    if (!target || !session) {
      return;
    }
    const feedback = session.reject(target.item.index);
    await this.sendFeedback(feedback);
    const first = await this.show(session.open ? session : undefined);
    if (first) {
      await this.preview(first);
    }
  }

  private async dismiss(): Promise<void> {
    await this.sendFeedback(this.session?.dismiss());
    await this.show(undefined);
  }

  private async sendFeedback(args: FeedbackArguments | undefined): Promise<void> {
    if (!args || !client?.isRunning()) {
      return;
    }
    try {
      await client.sendRequest(ExecuteCommandRequest.type, { command: FEEDBACK_COMMAND, arguments: [args] });
    } catch (error) {
      log(`feedback failed: ${String(error)}`);
    }
  }

  /** Close the diff previews of earlier candidates. */
  private async closePreviews(): Promise<void> {
    const tabs = vscode.window.tabGroups.all
      .flatMap((group) => group.tabs)
      .filter((tab) => tab.input instanceof vscode.TabInputTextDiff && tab.input.modified.scheme === PREVIEW_SCHEME);
    if (tabs.length > 0) {
      await vscode.window.tabGroups.close(tabs, true);
    }
  }
}

/** A file's text as the editor has it (the open document), else on disk; "" if none. */
async function currentText(uri: string): Promise<string> {
  const open = vscode.workspace.textDocuments.find((d) => sameUri(d.uri.toString(), uri));
  if (open) {
    return open.getText();
  }
  try {
    return new TextDecoder().decode(await vscode.workspace.fs.readFile(vscode.Uri.parse(uri)));
  } catch {
    return "";
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  new Candidates(context);
  context.subscriptions.push(
    vscode.commands.registerCommand("ocamlAi.restartServer", async () => {
      await stopClient();
      await startClient();
    }),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration("ocamlAi.serverCommand")) {
        await stopClient();
        await startClient();
      } else if (event.affectsConfiguration("ocamlAi.settings") && client?.isRunning()) {
        await client.sendNotification(
          DidChangeConfigurationNotification.type,
          didChangeConfigurationParams(config().get("settings")),
        );
      }
    }),
  );
  await startClient();
}

export async function deactivate(): Promise<void> {
  await stopClient();
}
