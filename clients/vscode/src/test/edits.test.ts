import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  TextEdit,
  WorkspaceEdit,
  applyTextEdits,
  candidateNewText,
  editedUris,
  editsFor,
  lineStarts,
  normalizeUri,
  offsetAt,
  parsePreviewQuery,
  previewQuery,
  sameUri,
  staleDocuments,
  uriPath,
} from "../candidates";

function edit(sl: number, sc: number, el: number, ec: number, newText: string): TextEdit {
  return { range: { start: { line: sl, character: sc }, end: { line: el, character: ec } }, newText };
}

describe("applyTextEdits", () => {
  test("replaces a whole line", () => {
    assert.equal(applyTextEdits("a\nb\nc\n", [edit(1, 0, 2, 0, "B\n")]), "a\nB\nc\n");
  });

  test("applies several edits in one document against the original positions", () => {
    const text = "let a = 1\nlet b = 2\nlet c = 3\n";
    const edits = [edit(2, 8, 2, 9, "30"), edit(0, 4, 0, 5, "alpha"), edit(1, 0, 2, 0, "")];
    assert.equal(applyTextEdits(text, edits), "let alpha = 1\nlet c = 30\n");
  });

  test("keeps the order of inserts at the same position", () => {
    assert.equal(applyTextEdits("x", [edit(0, 0, 0, 0, "a"), edit(0, 0, 0, 0, "b")]), "abx");
    assert.equal(applyTextEdits("x", [edit(0, 1, 0, 1, "1"), edit(0, 0, 0, 1, "y"), edit(0, 1, 0, 1, "2")]), "y12");
  });

  test("counts characters in UTF-16 code units (an emoji is two)", () => {
    const text = 'let s = "😀" ^ x\n';
    // "let s = \"" is 9 units, the emoji 2, the quote 1: `^` starts at 13.
    assert.equal(applyTextEdits(text, [edit(0, 13, 0, 14, "|>")]), 'let s = "😀" |> x\n');
    assert.equal(applyTextEdits(text, [edit(0, 9, 0, 11, "🐫")]), 'let s = "🐫" ^ x\n');
  });

  test("an emoji on an earlier line does not shift later lines", () => {
    const text = "(* 🐫🐫 *)\nlet x = 1\n";
    assert.equal(applyTextEdits(text, [edit(1, 8, 1, 9, "2"), edit(0, 3, 0, 7, "camels")]), "(* camels *)\nlet x = 2\n");
  });

  test("handles CRLF line ends: a character never reaches into the line break", () => {
    const text = "let a = 1\r\nlet b = 2\r\n";
    assert.equal(applyTextEdits(text, [edit(1, 8, 1, 9, "3")]), "let a = 1\r\nlet b = 3\r\n");
    // past the end of the line: the end of the line, before \r\n
    assert.equal(applyTextEdits(text, [edit(0, 99, 0, 99, " + 1")]), "let a = 1 + 1\r\nlet b = 2\r\n");
    // whole lines, as the server sends them
    assert.equal(applyTextEdits(text, [edit(0, 0, 1, 0, "let a = 0\r\n")]), "let a = 0\r\nlet b = 2\r\n");
    // a lone \r ends a line too
    assert.equal(applyTextEdits("a\rb\r", [edit(1, 0, 1, 1, "c")]), "a\rc\r");
  });

  test("a line past the end means the end of the text", () => {
    assert.equal(applyTextEdits("a\n", [edit(5, 0, 5, 0, "b\n")]), "a\nb\n");
    assert.equal(applyTextEdits("a", [edit(1, 0, 1, 0, "\nb")]), "a\nb");
  });

  test("an empty text and a created file", () => {
    assert.equal(applyTextEdits("", [edit(0, 0, 0, 0, "let extra = 1\n")]), "let extra = 1\n");
  });

  test("refuses overlapping edits", () => {
    assert.throws(() => applyTextEdits("abcdef", [edit(0, 0, 0, 3, "x"), edit(0, 2, 0, 4, "y")]), /overlapping/);
  });

  test("line starts and offsets", () => {
    const text = "ab\r\ncd\ne";
    assert.deepEqual(lineStarts(text), [0, 4, 7]);
    const starts = lineStarts(text);
    assert.equal(offsetAt(text, starts, { line: 1, character: 1 }), 5);
    assert.equal(offsetAt(text, starts, { line: 0, character: 10 }), 2);
    assert.equal(offsetAt(text, starts, { line: 2, character: 10 }), 8);
    assert.equal(offsetAt(text, starts, { line: 7, character: 0 }), 8);
  });
});

const A = "file:///work/p/lib/a.ml";
const B = "file:///work/p/lib/b.ml";

describe("WorkspaceEdit", () => {
  const rich: WorkspaceEdit = {
    documentChanges: [
      { textDocument: { uri: A, version: 4 }, edits: [edit(0, 0, 0, 1, "X")] },
      { kind: "create", uri: B },
      { textDocument: { uri: B, version: null }, edits: [edit(0, 0, 0, 0, "let b = 1\n")] },
      { textDocument: { uri: A, version: 4 }, edits: [edit(1, 0, 1, 1, "Y")] },
    ],
  };

  test("lists each edited file once, in order", () => {
    assert.deepEqual(editedUris(rich), [A, B]);
    assert.deepEqual(editedUris({ changes: { [B]: [], [A]: [] } }), [B, A]);
    assert.deepEqual(editedUris({}), []);
  });

  test("collects a file's edits across documentChanges", () => {
    const a = editsFor(rich, A);
    assert.equal(a?.edits.length, 2);
    assert.equal(a?.version, 4);
    assert.equal(editsFor(rich, B)?.created, true);
    assert.equal(editsFor(rich, "file:///elsewhere.ml"), undefined);
  });

  test("a candidate's new text per file, from documentChanges or changes", () => {
    assert.equal(candidateNewText(rich, A, "a\nb\n"), "X\nY\n");
    assert.equal(candidateNewText(rich, B, "ignored: the file is new"), "let b = 1\n");
    assert.equal(candidateNewText(rich, "file:///other.ml", "same"), undefined);
    const plain: WorkspaceEdit = { changes: { [A]: [edit(0, 0, 1, 0, ""), edit(1, 1, 1, 1, "!")] } };
    assert.equal(candidateNewText(plain, A, "a\nb\n"), "b!\n");
    assert.equal(candidateNewText({ documentChanges: [{ kind: "delete", uri: A }] }, A, "x"), null);
  });

  test("matches URIs however they are spelled", () => {
    const spaced = "file:///work/my%20project/a.ml";
    assert.equal(uriPath(spaced), "/work/my project/a.ml");
    assert.ok(sameUri(spaced, "file:///work/my project/a.ml"));
    assert.ok(sameUri("file:///c%3A/Users/x.ml", "file:///C:/Users/x.ml"));
    assert.ok(!sameUri(A, B));
    assert.equal(normalizeUri("FILE:///a/b.ml"), "file:///a/b.ml");
    assert.equal(candidateNewText({ changes: { [spaced]: [edit(0, 0, 0, 0, "x")] } }, "file:///work/my project/a.ml", ""), "x");
  });

  test("finds the documents that changed since the edit was made", () => {
    const versions = new Map([[A, 4]]);
    assert.deepEqual(staleDocuments(rich, (uri) => versions.get(uri)), []);
    versions.set(A, 5);
    assert.deepEqual(staleDocuments(rich, (uri) => versions.get(uri)), [A, A]);
    // version null (a file on disk) and documents that are not open are never stale
    assert.deepEqual(staleDocuments(rich, () => undefined), []);
    assert.deepEqual(staleDocuments({ changes: { [A]: [] } }, () => 9), []);
  });
});

describe("preview URIs", () => {
  test("round-trip the result, the candidate and the file", () => {
    const ref = { result: "c793587ee4a7", candidate: 2, file: "file:///work/my%20p/a&b.ml" };
    assert.deepEqual(parsePreviewQuery(previewQuery(ref)), ref);
  });

  test("reject a query that is not ours", () => {
    assert.equal(parsePreviewQuery(""), undefined);
    assert.equal(parsePreviewQuery("result=x&candidate=-1&file=f"), undefined);
    assert.equal(parsePreviewQuery("result=x&candidate=1"), undefined);
  });
});
