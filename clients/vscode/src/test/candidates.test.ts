import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  Candidate,
  CandidateSession,
  GenerateResult,
  Verification,
  candidateItems,
  candidateNewText,
  clampCandidates,
  diffStats,
  didChangeConfigurationParams,
  effectiveStatus,
  feedbackArguments,
  fileDiffs,
  formatErrors,
  formatRejections,
  generateArguments,
  instructionFromLine,
  isSettingsSection,
  parseGenerateResult,
  rankedOrder,
  resultMessage,
  serverExecutable,
  settingsObject,
  startFailureMessage,
  statusInfo,
  validateInstruction,
} from "../candidates";
import { ROOT, SERVER_RESULT, SHAPES_ML } from "./fixture";

const URI = "file:///work/p/lib/shapes.ml";

describe("the generate request", () => {
  test("carries the URI, the selection, the instruction and the count, and applies nothing", () => {
    const range = { start: { line: 3, character: 2 }, end: { line: 5, character: 0 } };
    assert.deepEqual(generateArguments(URI, range, "  make it tail recursive ", 3), {
      uri: URI,
      range,
      instruction: "make it tail recursive",
      candidates: 3,
      apply: false,
    });
  });

  test("orders a backwards selection and copies positions (no editor objects on the wire)", () => {
    const start = { line: 5, character: 1, extra: "vscode.Position" };
    const end = { line: 2, character: 4 };
    const args = generateArguments(URI, { start, end }, "x", 1);
    assert.deepEqual(args.range, { start: { line: 2, character: 4 }, end: { line: 5, character: 1 } });
    assert.equal(generateArguments(URI, undefined, "x", 1).range, undefined);
  });

  test("keeps the count within what the server accepts", () => {
    assert.equal(clampCandidates(3), 3);
    assert.equal(clampCandidates(0), 1);
    assert.equal(clampCandidates(50), 10);
    assert.equal(clampCandidates(2.6), 3);
    assert.equal(clampCandidates(undefined), 3);
    assert.equal(clampCandidates("4"), 3);
    assert.equal(generateArguments(URI, undefined, "x", 99).candidates, 10);
  });

  test("refuses an empty or overlong instruction", () => {
    assert.match(validateInstruction("   ") ?? "", /Say what to change/);
    assert.match(validateInstruction("x".repeat(4001)) ?? "", /too long/);
    assert.equal(validateInstruction("make areas non-negative"), undefined);
    assert.throws(() => generateArguments(URI, undefined, " ", 3), /Say what to change/);
  });

  test("prefills the instruction from an (* ai: ... *) comment", () => {
    assert.equal(instructionFromLine("  (* ai: make rectangle areas non-negative *)"), "make rectangle areas non-negative");
    assert.equal(instructionFromLine("let x = 1 (* AI:  inline this  *)"), "inline this");
    assert.equal(instructionFromLine("(* ai: a comment that goes on"), "a comment that goes on");
    assert.equal(instructionFromLine("(* ai: *)"), undefined);
    assert.equal(instructionFromLine("let x = 1 (* a comment *)"), undefined);
  });

  test("feedback names the result, not a candidate", () => {
    assert.deepEqual(feedbackArguments("c793587ee4a7", true), { id: "c793587ee4a7", accepted: true });
    assert.deepEqual(feedbackArguments("c793587ee4a7", false), { id: "c793587ee4a7", accepted: false });
  });
});

describe("settings", () => {
  test("the server command is the program and its arguments", () => {
    assert.deepEqual(serverExecutable(["ocaml-ai-ls"]), { command: "ocaml-ai-ls", args: [] });
    assert.deepEqual(serverExecutable(["python3", "-m", "ocaml_ai_ls"]), {
      command: "python3",
      args: ["-m", "ocaml_ai_ls"],
    });
    assert.deepEqual(serverExecutable("ocaml-ai-ls"), { command: "ocaml-ai-ls", args: [] });
    for (const bad of [[], [""], [1], null, {}]) {
      assert.throws(() => serverExecutable(bad), /serverCommand/);
    }
  });

  test("settings go to the server under its section", () => {
    const settings = { model: { base_url: "http://127.0.0.1:11434/v1" }, generate: { candidates: 2 } };
    assert.deepEqual(didChangeConfigurationParams(settings), { settings: { "ocaml-ai": settings } });
    assert.deepEqual(didChangeConfigurationParams(null), { settings: { "ocaml-ai": {} } });
    assert.deepEqual(settingsObject([1, 2]), {});
    assert.ok(isSettingsSection("ocaml-ai"));
    assert.ok(!isSettingsSection("ocaml"));
    assert.ok(!isSettingsSection(undefined));
  });

  test("a server that does not start says how to fix it", () => {
    const text = startFailureMessage(["ocaml-ai-ls"], new Error("spawn ocaml-ai-ls ENOENT"));
    assert.match(text, /`ocaml-ai-ls`.*ENOENT.*pip install ocaml-ai-ls.*ocamlAi\.serverCommand/);
  });
});

function verification(status: string, errors: Verification["errors"] = []): Verification {
  return { status, stages: [], errors };
}

function candidate(id: string, status: string, diff: string, errors: Verification["errors"] = []): Candidate {
  return {
    id,
    model: "m",
    diff,
    edit: { changes: { [URI]: [] } },
    verification: verification(status, errors),
    files: ["lib/shapes.ml"],
    round: 0,
  };
}

function result(candidates: Candidate[], extra: Partial<GenerateResult> = {}): GenerateResult {
  return {
    id: "r1",
    candidates,
    applied: false,
    cancelled: false,
    error: null,
    rejected: [],
    timings: {},
    arm: "",
    provider: "",
    model: "",
    strategy: "",
    ...extra,
  };
}

const ONE_LINE = "--- a/lib/shapes.ml\n+++ b/lib/shapes.ml\n@@ -1 +1 @@\n-a\n+b\n";
const THREE_LINES = "--- a/lib/shapes.ml\n+++ b/lib/shapes.ml\n@@ -1,2 +1,3 @@\n-a\n+b\n+c\n x\n";
const TYPE_ERROR = { path: "lib/shapes.ml", line: 9, column: 24, message: "This expression has type float" };

describe("a real server result", () => {
  const parsed = parseGenerateResult(SERVER_RESULT);

  test("parses with every field", () => {
    assert.equal(parsed.id, "c793587ee4a7");
    assert.equal(parsed.candidates.length, 2);
    assert.equal(parsed.candidates[0].verification.status, "ok");
    assert.deepEqual(parsed.candidates[0].files, ["lib/shapes.ml", "lib/extra.ml"]);
    assert.equal(parsed.rejected.length, 1);
    assert.equal(parsed.timings.total_ms > 0, true);
    assert.equal(resultMessage(parsed), undefined);
  });

  test("becomes view items: status, counts, files, errors", () => {
    const [best, second] = candidateItems(parsed);
    assert.equal(best.label, "1. 2 files");
    assert.equal(best.description, "verified · +2 −1");
    assert.equal(best.icon, "pass");
    assert.deepEqual(
      best.files.map((f) => [f.path, f.description, f.created]),
      [
        ["lib/shapes.ml", "+1 −1", false],
        ["lib/extra.ml", "new file, +1 −0", true],
      ],
    );
    assert.equal(second.label, "2. lib/shapes.ml");
    assert.equal(second.description, "type error · +1 −1");
    assert.equal(second.icon, "error");
    assert.equal(second.color, "testing.iconFailed");
    assert.match(second.tooltip, /lib\/shapes\.ml:9:24: This expression has type float but an expression was expected of type int/);
    assert.match(second.tooltip, /check type_error \(41 ms\)/);
  });

  test("gives each file's new text for the diff preview", () => {
    const best = parsed.candidates[0];
    const shapes = candidateNewText(best.edit, `${ROOT}/lib/shapes.ml`, SHAPES_ML);
    assert.equal(shapes, SHAPES_ML.replace("| Rect (w, h) -> w *. h", "| Rect (w, h) -> abs_float (w *. h)"));
    assert.equal(candidateNewText(best.edit, `${ROOT}/lib/extra.ml`, ""), "let extra = 1\n");
    const crlf = SHAPES_ML.replace(/\n/g, "\r\n");
    const edited = candidateNewText(parsed.candidates[1].edit, `${ROOT}/lib/shapes.ml`, crlf);
    assert.match(edited ?? "", /\r\n {2}\| Rect \(w, h\) -> abs \(w \*\. h\)\n\r\nlet perimeter/);
  });

  test("without candidates, says why", () => {
    const none = parseGenerateResult({ ...(SERVER_RESULT as object), candidates: [] });
    assert.deepEqual(resultMessage(none), {
      severity: "warning",
      text: "OCaml AI: no usable edit. scripted-model: no edit found in the answer (expected SEARCH/REPLACE blocks or a unified diff)",
    });
  });
});

describe("parsing the answer", () => {
  test("refuses what is not a result", () => {
    assert.throws(() => parseGenerateResult(null), /unexpected answer/);
    assert.throws(() => parseGenerateResult([1]), /unexpected answer/);
  });

  test("fills missing fields and drops candidates without an edit", () => {
    const r = parseGenerateResult({ id: "x", candidates: [{ id: "a" }, { id: "b", edit: { changes: { [URI]: [] } } }] });
    assert.deepEqual(
      r.candidates.map((c) => [c.id, c.verification.status, c.files]),
      [["b", "unverified", []]],
    );
    assert.equal(r.error, null);
    assert.deepEqual(r.rejected, []);
  });
});

describe("messages", () => {
  test("the model's error, a cancellation, nothing at all", () => {
    assert.deepEqual(resultMessage(result([], { error: "cannot reach the model at http://127.0.0.1:9/v1" })), {
      severity: "error",
      text: "OCaml AI: cannot reach the model at http://127.0.0.1:9/v1",
    });
    assert.deepEqual(resultMessage(result([], { cancelled: true })), { severity: "info", text: "OCaml AI: cancelled." });
    assert.equal(resultMessage(result([]))?.text, "OCaml AI: no edit was produced.");
  });

  test("rejections: one clause each, at most three", () => {
    const rejected = [1, 2, 3, 4, 5].map((i) => ({ id: `r-${i}`, model: i === 2 ? "" : "m", reason: `reason ${i}` }));
    assert.equal(formatRejections(rejected), "m: reason 1; reason 2; m: reason 3 (and 2 more)");
    assert.equal(formatRejections([{ id: "", model: "", reason: " " }]), "no reason given");
  });

  test("warns when no candidate compiles", () => {
    const bad = candidate("a", "type_error", ONE_LINE, [TYPE_ERROR]);
    assert.match(resultMessage(result([bad]))?.text ?? "", /the candidate does not compile/);
    assert.match(resultMessage(result([bad, bad]))?.text ?? "", /none of the 2 candidates compiles/);
    assert.equal(resultMessage(result([bad, candidate("b", "ok", ONE_LINE)])), undefined);
  });

  test("errors as path:line:column lines, pre-existing ones marked", () => {
    const v = verification("type_error", [
      TYPE_ERROR,
      { path: "lib/b.ml", line: 1, column: 0, message: "Unbound value x\nHint: y", preexisting: true },
      { path: "", line: 0, column: 0, message: "dune timed out" },
    ]);
    assert.deepEqual(formatErrors(v), [
      "lib/shapes.ml:9:24: This expression has type float",
      "lib/b.ml:1:0: Unbound value x Hint: y (already there before)",
      "dune timed out",
    ]);
    assert.deepEqual(formatErrors(v, 1), ["lib/shapes.ml:9:24: This expression has type float", "… and 2 more"]);
  });
});

describe("status and ranking", () => {
  test("every status has a label and an icon", () => {
    for (const status of ["ok", "warning", "parse_error", "type_error", "test_failure", "timeout", "unverified"]) {
      const info = statusInfo(status);
      assert.ok(info.label && info.icon && info.color, status);
    }
    assert.equal(statusInfo("new_status").label, "new_status");
  });

  test("errors the project already had do not count against a candidate", () => {
    const old = verification("type_error", [{ ...TYPE_ERROR, preexisting: true }]);
    assert.equal(effectiveStatus(old), "unverified");
    assert.equal(effectiveStatus(verification("type_error", [TYPE_ERROR])), "type_error");
  });

  test("best first: status tier, fewer new errors, smaller diff, then the server's order", () => {
    const cands = [
      candidate("parse", "parse_error", ONE_LINE, [TYPE_ERROR]),
      candidate("type2", "type_error", ONE_LINE, [TYPE_ERROR, TYPE_ERROR]),
      candidate("type1", "type_error", THREE_LINES, [TYPE_ERROR]),
      candidate("big", "ok", THREE_LINES),
      candidate("small", "ok", ONE_LINE),
      candidate("tests", "test_failure", ONE_LINE),
      candidate("small-too", "ok", ONE_LINE),
      candidate("unknown", "unverified", ONE_LINE),
      candidate("warns", "warning", ONE_LINE),
    ];
    assert.deepEqual(
      rankedOrder(cands).map((i) => cands[i].id),
      ["small", "small-too", "big", "warns", "tests", "unknown", "type1", "type2", "parse"],
    );
    assert.deepEqual(
      candidateItems(result(cands)).map((item) => [item.rank, cands[item.index].id]).slice(0, 2),
      [
        [1, "small"],
        [2, "small-too"],
      ],
    );
  });

  test("keeps a ranked server order as it is", () => {
    const parsed = parseGenerateResult(SERVER_RESULT);
    assert.deepEqual(rankedOrder(parsed.candidates), [0, 1]);
  });
});

describe("diff counts", () => {
  test("count per file, headers excluded", () => {
    assert.deepEqual(diffStats(THREE_LINES), { added: 2, removed: 1 });
    assert.deepEqual(diffStats(""), { added: 0, removed: 0 });
  });

  test("a removed line that starts with -- is not a header", () => {
    const diff = "--- a/x.ml\n+++ b/x.ml\n@@ -1,2 +1,1 @@\n--- old\n+++ new\n-x\n";
    assert.deepEqual(fileDiffs(diff).map((f) => [f.path, f.added, f.removed]), [["x.ml", 1, 2]]);
  });

  test("hunk headers without counts, CRLF and the no-newline marker", () => {
    const diff = "--- a/x.ml\r\n+++ b/x.ml\r\n@@ @@\r\n-a\r\n+b\r\n\\ No newline at end of file\r\n--- a/y.ml\n+++ b/y.ml\n@@ -3 +3,2 @@\n-c\n+d\n+e\n";
    assert.deepEqual(
      fileDiffs(diff).map((f) => [f.path, f.added, f.removed]),
      [
        ["x.ml", 1, 1],
        ["y.ml", 2, 1],
      ],
    );
    assert.ok(fileDiffs(diff)[1].diff.startsWith("--- a/y.ml\n"));
  });
});

describe("deciding on a result", () => {
  const three = (): CandidateSession =>
    new CandidateSession(
      result([candidate("a", "ok", ONE_LINE), candidate("b", "ok", ONE_LINE), candidate("c", "type_error", ONE_LINE, [TYPE_ERROR])]),
    );

  test("applying one sends accepted: true once", () => {
    const s = three();
    assert.deepEqual(s.accept(1), { id: "r1", accepted: true });
    assert.equal(s.open, false);
    assert.deepEqual(s.items(), []);
    assert.equal(s.accept(0), undefined);
    assert.equal(s.dismiss(), undefined);
  });

  test("rejecting them one by one sends accepted: false after the last", () => {
    const s = three();
    assert.equal(s.reject(0), undefined);
    assert.deepEqual(
      s.items().map((i) => i.index),
      [1, 2],
    );
    assert.equal(s.candidate(0), undefined);
    assert.equal(s.reject(0), undefined);
    assert.equal(s.reject(2), undefined);
    assert.deepEqual(s.reject(1), { id: "r1", accepted: false });
    assert.equal(s.open, false);
  });

  test("dismissing (or asking again) sends accepted: false once", () => {
    const s = three();
    assert.deepEqual(s.dismiss(), { id: "r1", accepted: false });
    assert.equal(s.dismiss(), undefined);
    assert.equal(s.candidate(0), undefined);
  });

  test("a rejected candidate cannot be applied", () => {
    const s = three();
    s.reject(0);
    assert.equal(s.accept(0), undefined);
    assert.deepEqual(s.accept(2), { id: "r1", accepted: true });
  });
});
