"""Rendering packed pieces for the model and for `--explain` (`ocaml_ai_ls.context.render`),
on a hand-built context."""

from __future__ import annotations

from ocaml_ai_ls.context.model import (
    DEFINITION,
    FILE,
    MODULE,
    TARGET,
    Context,
    Dropped,
    Piece,
    Target,
)
from ocaml_ai_ls.context.render import explain, file_block, render_blocks

TARGET_PIECE = Piece(TARGET, "lib/a.ml", (3, 4), ("let f x =", "  g x"), "`f`")
REST = Piece(FILE, "lib/a.ml", (1,), ("open Util",), "the file's opens", 0.9, "what the file opens")
G = Piece(
    DEFINITION,
    "lib/b.mli",
    (7, 8),
    ("(** G. *)", "val g : int -> int"),
    "`g`",
    0.9,
    "the target uses `g`",
)
H = Piece(
    MODULE,
    "lib/b.mli",
    (20,),
    ("val h : unit",),
    "B.h: value (signature)",
    0.12,
    "the file names B",
)
CONTEXT = Context(
    "lib/a.ml",
    Target("lib/a.ml", 3, 4, "value_definition", "f", "let f x =\n  g x"),
    (TARGET_PIECE, REST, G, H),
    (
        Dropped(
            Piece(
                MODULE, "lib/c.mli", (5,), ("val c : t",), "C.c: value", 0.01, "the file names C"
            ),
            "needs 9 tokens, 2 left",
        ),
    ),
    100,
    {"lib/a.ml": 10, "lib/b.mli": 30},
)


def test_a_file_block_numbers_lines_and_marks_gaps() -> None:
    assert file_block("lib/b.mli", [G, H], 30) == (
        "### lib/b.mli (30 lines; definitions the target uses or the instruction names, "
        "what the modules in scope offer)\n"
        "```ocaml\n"
        "      ...\n"
        "   7| (** G. *)\n"
        "   8| val g : int -> int\n"
        "      ...\n"
        "  20| val h : unit\n"
        "      ...\n"
        "```"
    )


def test_blocks_put_the_file_being_edited_last() -> None:
    blocks = render_blocks(CONTEXT)
    assert [rel for rel, _ in blocks] == ["lib/b.mli", "lib/a.ml"]
    edited = blocks[1][1]
    assert edited.startswith("### lib/a.ml (10 lines; `f`, the rest of the file being edited)")
    assert "   1| open Util\n      ...\n   3| let f x =\n   4|   g x\n      ...\n```" in edited


def test_explain_gives_scores_reasons_and_what_did_not_fit() -> None:
    text = explain(CONTEXT)
    lines = text.splitlines()
    assert lines[0].startswith("lib/a.ml: ") and lines[0].endswith(" of 100 tokens, 4 pieces")
    assert "kept always  lib/a.ml:3-4  `f`" in lines[1]
    assert "score 0.900  lib/b.mli:7-8  `g`" in text
    assert "the target uses `g`" in text
    assert "score 0.120  lib/b.mli:20-20  B.h: value (signature)" in text
    assert "best of what did not fit" in text
    assert "score 0.010  lib/c.mli:5-5  C.c: value: needs 9 tokens, 2 left" in text
    assert lines[-1].strip() == "the file names C"
