"""Open documents: incremental changes keep the text and the tree exact."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types

from ocaml_ai_ls.context.parsing import SourceKind, parse
from ocaml_ai_ls.documents import Document, DocumentStore
from ocaml_ai_ls.positions import Encoding, LineIndex, encode

SOURCE = """let rec sum = function
  | [] -> 0
  | x :: xs -> x + sum xs

(* é 😀 *)
type t = { a : int; b : string }

module M = struct
  let z = "ü"
end
"""


def change(sl: int, sc: int, el: int, ec: int, text: str) -> types.TextDocumentContentChangePartial:
    return types.TextDocumentContentChangePartial(
        range=types.Range(
            start=types.Position(line=sl, character=sc), end=types.Position(line=el, character=ec)
        ),
        text=text,
    )


def test_open_parses_ml_and_mli_with_their_grammars() -> None:
    ml = Document.open("file:///p/a.ml", 1, SOURCE, Encoding.UTF16)
    mli = Document.open("file:///p/a.mli", 1, "val x : int\n", Encoding.UTF16)
    other = Document.open("file:///p/dune", 1, "(library (name a))", Encoding.UTF16)
    assert ml.kind is SourceKind.IMPLEMENTATION and ml.tree is not None
    assert not ml.tree.root_node.has_error
    assert mli.tree is not None and mli.tree.root_node.children[0].type == "value_specification"
    assert other.tree is None


def test_incremental_change_matches_a_fresh_parse() -> None:
    doc = Document.open("file:///p/a.ml", 1, SOURCE, Encoding.UTF16)
    # replace "b : string" (after an é and an emoji two lines up) and insert a line
    doc.apply([change(5, 20, 5, 30, "c : float"), change(0, 0, 0, 0, "let x = 1\n")], 2)
    expected = "let x = 1\n" + SOURCE.replace("b : string", "c : float")
    assert doc.text == expected
    assert doc.version == 2
    assert doc.tree is not None
    assert str(doc.tree.root_node) == str(
        parse(encode(expected), SourceKind.IMPLEMENTATION).root_node
    )


def test_whole_document_change_replaces_text() -> None:
    doc = Document.open("file:///p/a.ml", 1, SOURCE, Encoding.UTF16)
    doc.apply([types.TextDocumentContentChangeWholeDocument(text="let y = (")], 5)
    assert doc.text == "let y = ("
    assert doc.tree is not None and doc.tree.root_node.has_error


def test_store_open_change_close() -> None:
    store = DocumentStore()
    store.encoding = Encoding.UTF8
    store.open(
        types.TextDocumentItem(
            uri="file:///p/a.ml", language_id="ocaml", version=1, text="let a = 1\n"
        )
    )
    store.change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri="file:///p/a.ml", version=2),
            content_changes=[change(0, 8, 0, 9, "2")],
        )
    )
    doc = store.get("file:///p/a.ml")
    assert doc is not None and doc.text == "let a = 2\n" and doc.encoding is Encoding.UTF8
    store.close("file:///p/a.ml")
    assert store.get("file:///p/a.ml") is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 10_000), st.integers(0, 40), st.text(max_size=12)), max_size=8
    )
)
def test_random_edits_keep_text_and_tree_in_step(edits: list[tuple[int, int, str]]) -> None:
    """Any sequence of edits (UTF-16 positions, odd characters) gives the text, and a tree
    equal to a fresh parse wherever the text parses: tree-sitter's error recovery may
    differ between an incremental and a fresh parse (`(` typed over the first line)."""
    doc = Document.open("file:///p/a.ml", 1, SOURCE, Encoding.UTF16)
    rng = random.Random(len(edits))
    expected = SOURCE
    for seed, length, text in edits:
        data = encode(expected)
        index = LineIndex(data, Encoding.UTF16)
        start = index.offset(index.position(seed % (len(data) + 1)))
        end = index.offset(index.position(min(len(data), start + length + rng.randrange(3))))
        a, b = index.position(start), index.position(end)
        doc.apply([change(a.line, a.character, b.line, b.character, text)], doc.version + 1)
        expected = (data[:start] + encode(text) + data[end:]).decode("utf-8", "surrogatepass")
        assert doc.text == expected
    assert doc.tree is not None
    fresh = parse(encode(expected), SourceKind.IMPLEMENTATION)
    if not fresh.root_node.has_error:
        assert str(doc.tree.root_node) == str(fresh.root_node)
