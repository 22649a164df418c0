/**
 * extension.ts and view.ts driven through their commands, with fakes for `vscode`
 * and the language client (test/fakes.ts): the flow of "OCaml AI: Edit…" from the
 * instruction to the applied edit and the feedback the server hears.
 */

import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import { ROOT, SERVER_RESULT, SHAPES_ML } from "./fixture";
import { Editor, Server, Uri, document, loadExtension } from "./fakes";

const SHAPES = `${ROOT}/lib/shapes.ml`;
const EXTRA = `${ROOT}/lib/extra.ml`;
const FIXED = SHAPES_ML.replace("| Rect (w, h) -> w *. h", "| Rect (w, h) -> abs_float (w *. h)");

let editor: Editor;
let server: Server;
let context: { subscriptions: { dispose(): unknown }[] };

async function activate(): Promise<void> {
  const extension = loadExtension(editor, server);
  await extension.activate(context);
}

function view(): any {
  return editor.treeViews[0];
}

function nodes(): any[] {
  return view().provider.getChildren();
}

beforeEach(() => {
  editor = new Editor();
  server = new Server();
  server.answer = (params) => (params.command === "ocaml-ai.generate" ? SERVER_RESULT : null);
  context = { subscriptions: [] };
  editor.open(document(SHAPES, SHAPES_ML, 1), { start: { line: 8, character: 4 }, end: { line: 8, character: 4 } });
});

describe("activation", () => {
  test("starts the server from the settings for OCaml files", async () => {
    editor.settings.settings = { model: { model: "qwen" } };
    await activate();
    const client = server.client;
    assert.deepEqual(client.serverOptions, { command: "ocaml-ai-ls", args: ["--x"], transport: 0 });
    assert.deepEqual(client.clientOptions.documentSelector, [
      { scheme: "file", language: "ocaml" },
      { scheme: "file", language: "ocaml.interface" },
    ]);
    assert.deepEqual(client.clientOptions.initializationOptions, { model: { model: "qwen" } });
    assert.equal(client.isRunning(), true);
    for (const command of ["ocamlAi.edit", "ocamlAi.apply", "ocamlAi.reject", "ocamlAi.dismiss", "ocamlAi.preview"]) {
      assert.ok(editor.commands.has(command), command);
    }
  });

  test("answers the server's workspace/configuration for its section", async () => {
    editor.settings.settings = { generate: { candidates: 2 } };
    await activate();
    const configuration = server.client.clientOptions.middleware.workspace.configuration;
    const answers = await configuration(
      { items: [{ section: "ocaml-ai" }, { section: "editor" }] },
      {},
      async () => [null, { tabSize: 2 }],
    );
    assert.deepEqual(answers, [{ generate: { candidates: 2 } }, { tabSize: 2 }]);
  });

  test("sends changed settings under the server's section; a new command restarts it", async () => {
    await activate();
    await editor.changeSettings("settings", { model: { retries: 1 } });
    assert.deepEqual(server.notifications, [
      { method: "workspace/didChangeConfiguration", params: { settings: { "ocaml-ai": { model: { retries: 1 } } } } },
    ]);
    const first = server.client;
    await editor.changeSettings("serverCommand", ["python3", "-m", "ocaml_ai_ls"]);
    assert.equal(first.stopped, true);
    assert.equal(server.clients.length, 2);
    assert.deepEqual(server.client.serverOptions.args, ["-m", "ocaml_ai_ls"]);
  });

  test("a server that does not start says how to fix it", async () => {
    server.startError = new Error("spawn ocaml-ai-ls ENOENT");
    await activate();
    assert.match(editor.messages[0].text, /could not start.*ENOENT.*ocamlAi\.serverCommand/);
    editor.inputs.push("x");
    await editor.run("ocamlAi.edit");
    assert.match(editor.messages[1].text, /not running/);
    assert.deepEqual(server.requests, []);
  });
});

describe("OCaml AI: Edit…", () => {
  test("asks for candidates, shows them best first and previews the best", async () => {
    await activate();
    editor.inputs.push(" make areas non-negative ");
    await editor.run("ocamlAi.edit");
    assert.deepEqual(server.executed("ocaml-ai.generate"), [
      {
        uri: SHAPES,
        range: { start: { line: 8, character: 4 }, end: { line: 8, character: 4 } },
        instruction: "make areas non-negative",
        candidates: 3,
        apply: false,
      },
    ]);
    const [best, second] = nodes();
    const item = view().provider.getTreeItem(best);
    assert.equal(item.label, "1. 2 files");
    assert.equal(item.description, "verified · +2 −1");
    assert.equal(item.iconPath.id, "pass");
    assert.equal(item.contextValue, "candidate");
    assert.equal(view().provider.getTreeItem(second).description, "type error · +1 −1");
    const files = view().provider.getChildren(best);
    assert.deepEqual(
      files.map((f: any) => [view().provider.getTreeItem(f).label, view().provider.getTreeItem(f).description]),
      [
        ["lib/shapes.ml", "+1 −1"],
        ["lib/extra.ml", "new file, +1 −0"],
      ],
    );
    assert.equal(view().provider.getParent(files[1]), best);
    assert.deepEqual(editor.revealed, [best]);

    const [diff] = editor.diffs();
    assert.equal(diff.left.toString(), SHAPES);
    assert.equal(diff.right.scheme, "ocaml-ai");
    assert.match(diff.title, /shapes\.ml ↔ candidate 1 \(verified/);
    assert.equal(await editor.previewText(diff.right), FIXED);
    assert.deepEqual(editor.messages, []);
  });

  test("previews a new file against an empty text, and a failing candidate", async () => {
    await activate();
    editor.inputs.push("x");
    await editor.run("ocamlAi.edit");
    const [best, second] = nodes();
    const extra = view().provider.getChildren(best)[1];
    const tree = view().provider.getTreeItem(extra);
    await editor.run(tree.command.command, ...tree.command.arguments);
    const diff = editor.diffs().at(-1)!;
    assert.equal(diff.left.scheme, "ocaml-ai");
    assert.equal(await editor.previewText(diff.left), "");
    assert.equal(await editor.previewText(diff.right), "let extra = 1\n");
    assert.equal(diff.right.path, Uri.parse(EXTRA).path);

    await editor.run("ocamlAi.preview", second);
    const bad = editor.diffs().at(-1)!;
    assert.match(await editor.previewText(bad.right), /\| Rect \(w, h\) -> abs \(w \*\. h\)/);
  });

  test("prefills the instruction from an (* ai: ... *) comment", async () => {
    await activate();
    const text = "(* ai: make it tail recursive *)\nlet rec f x = x\n";
    editor.open(document(SHAPES, text), { start: { line: 0, character: 3 }, end: { line: 0, character: 3 } });
    editor.inputs.push(undefined);
    await editor.run("ocamlAi.edit");
    assert.equal(editor.inputOptions[0].value, "make it tail recursive");
    assert.equal(editor.inputOptions[0].validateInput(""), "Say what to change, e.g. “make this tail recursive”.");
    assert.deepEqual(server.requests, []);
  });

  test("refuses a file that is not OCaml", async () => {
    await activate();
    editor.open(document("file:///w/README.md", "# hi", 1, "markdown"));
    await editor.run("ocamlAi.edit");
    assert.match(editor.messages[0].text, /open an OCaml file/);
    assert.deepEqual(editor.inputOptions, []);
  });

  test("says why there is no candidate", async () => {
    await activate();
    server.answer = () => ({ id: "r2", candidates: [], error: "cannot reach the model at http://127.0.0.1:9/v1" });
    editor.inputs.push("x");
    await editor.run("ocamlAi.edit");
    assert.deepEqual(editor.messages, [
      { severity: "error", text: "OCaml AI: cannot reach the model at http://127.0.0.1:9/v1" },
    ]);
    assert.deepEqual(nodes(), []);
  });

  test("a cancelled request says so and shows nothing", async () => {
    await activate();
    editor.cancelProgress = true;
    editor.inputs.push("x");
    await editor.run("ocamlAi.edit");
    assert.deepEqual(editor.messages, [{ severity: "info", text: "OCaml AI: cancelled." }]);
    assert.deepEqual(nodes(), []);
  });
});

describe("choosing a candidate", () => {
  async function generate(): Promise<void> {
    editor.inputs.push("make areas non-negative");
    await editor.run("ocamlAi.edit");
  }

  test("apply: the candidate's edit goes to the editor, the server hears accepted: true", async () => {
    await activate();
    await generate();
    editor.tabs.push({ input: new (editor.module().TabInputTextDiff)(Uri.parse(SHAPES), editor.diffs()[0].right) });
    const [best] = nodes();
    await editor.run("ocamlAi.apply", best);
    const candidate = (SERVER_RESULT as any).candidates[0];
    assert.deepEqual(editor.applied, [{ converted: candidate.edit }]);
    assert.deepEqual(server.executed("ocaml-ai.feedback"), [{ id: "c793587ee4a7", accepted: true }]);
    assert.deepEqual(nodes(), []);
    assert.equal(editor.closedTabs.length, 1);
    assert.match(editor.messages.at(-1)!.text, /applied candidate 1/);
    // the preview of a decided result is gone
    assert.match(await editor.previewText(editor.diffs()[0].right), /no longer on offer/);
  });

  test("apply refuses an edit made for an older version of the document", async () => {
    const result = structuredClone(SERVER_RESULT) as any;
    result.candidates[1].edit.documentChanges[0].textDocument.version = 3;
    server.answer = (params) => (params.command === "ocaml-ai.generate" ? result : null);
    editor.open(document(SHAPES, SHAPES_ML, 4));
    await activate();
    await generate();
    await editor.run("ocamlAi.apply", nodes()[1]);
    assert.deepEqual(editor.applied, []);
    assert.match(editor.messages.at(-1)!.text, /changed since the candidates were made/);
    assert.deepEqual(server.executed("ocaml-ai.feedback"), []);
    assert.equal(nodes().length, 2);
  });

  test("an edit the editor refuses keeps the candidates and sends no feedback", async () => {
    await activate();
    await generate();
    editor.applyResult = false;
    await editor.run("ocamlAi.apply", nodes()[0]);
    assert.match(editor.messages.at(-1)!.text, /refused the edit/);
    assert.deepEqual(server.executed("ocaml-ai.feedback"), []);
    assert.equal(nodes().length, 2);
  });

  test("apply from the palette takes the selected candidate", async () => {
    await activate();
    await generate();
    view().selection = [nodes()[1]];
    await editor.run("ocamlAi.apply");
    assert.deepEqual(editor.applied, [{ converted: (SERVER_RESULT as any).candidates[1].edit }]);
  });

  test("reject one by one: accepted: false once the last is gone", async () => {
    await activate();
    await generate();
    const [best, second] = nodes();
    await editor.run("ocamlAi.reject", best);
    assert.deepEqual(
      nodes().map((n) => n.item.rank),
      [2],
    );
    assert.deepEqual(server.executed("ocaml-ai.feedback"), []);
    await editor.run("ocamlAi.reject", second);
    assert.deepEqual(server.executed("ocaml-ai.feedback"), [{ id: "c793587ee4a7", accepted: false }]);
    assert.deepEqual(nodes(), []);
  });

  test("dismiss, or asking again, sends accepted: false for the undecided result", async () => {
    await activate();
    await generate();
    await generate();
    assert.deepEqual(server.executed("ocaml-ai.feedback"), [{ id: "c793587ee4a7", accepted: false }]);
    assert.equal(nodes().length, 2);
    await editor.run("ocamlAi.dismiss");
    assert.equal(server.executed("ocaml-ai.feedback").length, 2);
    assert.deepEqual(nodes(), []);
    await editor.run("ocamlAi.dismiss");
    assert.equal(server.executed("ocaml-ai.feedback").length, 2);
  });
});
