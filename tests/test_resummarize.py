"""Re-reading only the items around an edit gives what reading the whole file gives."""

from __future__ import annotations

import random
from pathlib import Path

from lsprotocol import types

from ocaml_ai_ls.context.index import WorkspaceIndex
from ocaml_ai_ls.context.summary import ChunkCache, summarize
from ocaml_ai_ls.documents import DocumentStore
from ocaml_ai_ls.positions import Encoding
from ocaml_ai_ls.uris import path_to_uri

SOURCE = (
    Path(__file__).resolve().parent / "fixtures" / "projects" / "wrapped" / "lib" / "shape.ml"
).read_text("utf-8")
ITEMS = [
    "let x = 1\n",
    "(* c *)\n",
    "(** doc *)\n",
    "\n",
    "type t = A | B\n",
    "module M = struct let z = 3 end\n",
    "open M\n",
]


def test_edits_keep_the_summary_equal_to_a_full_read(tmp_path: Path) -> None:
    path = tmp_path / "big.ml"
    text = SOURCE * 4
    path.write_text(text)
    documents = DocumentStore()
    documents.encoding = Encoding.UTF8
    index = WorkspaceIndex(tmp_path, documents)
    index.scan()
    doc = documents.open(types.TextDocumentItem(path_to_uri(path), "ocaml", 1, text))
    index.update_document(doc)
    rng = random.Random(11)
    compared = 0
    version = 1

    def edit(start: types.Position, end: types.Position, new: str) -> None:
        nonlocal version, compared
        version += 1
        change = types.TextDocumentContentChangePartial(range=types.Range(start, end), text=new)
        doc.apply([change], version)
        index.update_document(doc)
        assert doc.tree is not None and doc.kind is not None
        if doc.tree.root_node.has_error:
            return  # error recovery may differ between an incremental and a fresh parse
        got = index.summary(path)
        want = summarize(doc.tree, doc.data, doc.kind, ChunkCache())
        assert got is not None
        assert (got.chunks, got.line_count) == (want.chunks, want.line_count), version
        compared += 1

    for _ in range(300):  # an edit, then its undo: each a keystroke-sized change
        lines = doc.text.split("\n")
        n = rng.randrange(len(lines) - 1)
        line = lines[n]
        at = types.Position(line=n, character=0)
        below = types.Position(line=n + 1, character=0)
        if line.startswith(("let ", "type ", "(*", "module ")) or line == "":
            item = rng.choice(ITEMS)  # a new item above this one, then gone again
            edit(at, at, item)
            edit(at, types.Position(line=n + item.count("\n"), character=0), "")
        elif line.startswith(" "):
            edit(at, at, " ")  # indentation
            edit(at, types.Position(line=n, character=1), "")
        elif line == "" and lines[n + 1] == "":
            edit(at, below, "")  # a blank line less
            edit(at, at, "\n")
        else:
            end = types.Position(line=n, character=len(line))
            edit(end, end, " ")
            edit(end, types.Position(line=n, character=len(line) + 1), "")
    assert doc.text == text
    assert compared > 300  # most states are well-formed
