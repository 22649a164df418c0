"""Instruction comments: recognised near the cursor and removed cleanly."""

from __future__ import annotations

import pytest

from ocaml_ai_ls.documents import Document
from ocaml_ai_ls.instructions import find_instructions, instruction_text, removal_span
from ocaml_ai_ls.positions import Encoding, encode


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ("(* ai: make it tail recursive *)", "make it tail recursive"),
        ("(*AI:use   List.fold_left\n   instead *)", "use List.fold_left instead"),
        ("(* Ai : x *)", "x"),
        ("(** ai: doc comments are documentation *)", None),
        ("(* ai: *)", None),
        ("(* a note about ai: no *)", None),
    ],
)
def test_instruction_text(comment: str, expected: str | None) -> None:
    assert instruction_text(comment) == expected


SOURCE = "let a = 1\n\n(* ai: first *)\nlet f x =\n  x + 1 (* ai: second *)\n\n\n\n(* ai: far *)\nlet g = 2\n"


def test_finds_only_comments_near_the_range() -> None:
    doc = Document.open("file:///p/a.ml", 1, SOURCE, Encoding.UTF16)
    assert [i.text for i in find_instructions(doc, 3, 3)] == ["first", "second"]
    assert [i.text for i in find_instructions(doc, 9, 9)] == ["far"]
    assert find_instructions(doc, 0, 0) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\n  (* ai: x *)\nb\n", "a\nb\n"),
        ("a\r\n(* ai: x *)\r\nb", "a\r\nb"),
        ("let a = 1 (* ai: x *)\nb\n", "let a = 1\nb\n"),
        ("(* ai: x *) let a = 1\n", "let a = 1\n"),
        ("(* ai: x *)", ""),
    ],
)
def test_removal_span(text: str, expected: str) -> None:
    data = encode(text)
    start = data.index(b"(*")
    end = data.index(b"*)") + 2
    s, e = removal_span(data, start, end)
    assert (data[:s] + data[e:]).decode() == expected
