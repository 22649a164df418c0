"""Errors the project already had: marked `preexisting`, not held against a candidate
(ranking, repair), and left out of the repair prompt; with the real dune in a pool."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from ocaml_ai_ls.pipeline import rank
from ocaml_ai_ls.prompt import compile_feedback
from ocaml_ai_ls.request import Candidate
from ocaml_ai_ls.verify.pool import ShadowPool
from ocaml_ai_ls.verify.result import (
    OK,
    TYPE_ERROR,
    UNVERIFIED,
    CheckError,
    Verification,
    against_baseline,
)

OLD = CheckError("lib/other.ml", 1, 14, "This expression has type string")
NEW = CheckError("lib/calc.ml", 3, 5, "Unbound value y")


def test_errors_the_project_had_are_marked_by_file_and_message_not_line() -> None:
    moved = CheckError(OLD.path, OLD.line + 4, OLD.column, OLD.message)
    twice = Verification(TYPE_ERROR, errors=(moved, NEW, moved))
    marked = against_baseline(twice, Verification(TYPE_ERROR, errors=(OLD,)))
    assert [e.preexisting for e in marked.errors] == [True, False, False]  # once per baseline
    assert marked.new_errors == (NEW, moved) and marked.failed
    only_old = against_baseline(Verification(TYPE_ERROR, errors=(OLD,)), marked)
    assert not only_old.failed and only_old.new_errors == ()
    assert not Verification(TYPE_ERROR, errors=()).new_errors  # no errors: nothing to mark


def candidate(cid: str, verification: Verification, lines: int = 1) -> Candidate:
    diff = "--- a/x\n+++ b/x\n" + "+x\n" * lines
    return Candidate(cid, "m", diff, types.WorkspaceEdit(), verification, ())


def test_ranking_holds_only_new_errors_against_a_candidate() -> None:
    old = Verification(TYPE_ERROR, errors=(CheckError(OLD.path, 1, 1, OLD.message, 0, 0, True),))
    new = Verification(TYPE_ERROR, errors=(NEW,))
    two_new = Verification(TYPE_ERROR, errors=(NEW, NEW))
    ranked = rank(
        [
            candidate("two-new", two_new),
            candidate("new", new, lines=5),
            candidate("old-only", old, lines=9),
            candidate("unverified", Verification(UNVERIFIED), lines=3),
            candidate("ok", Verification(OK), lines=20),
        ]
    )
    assert [c.id for c in ranked] == ["ok", "unverified", "old-only", "new", "two-new"]


def test_the_repair_prompt_shows_the_new_errors_and_counts_the_old() -> None:
    old = CheckError(OLD.path, 1, 14, OLD.message, preexisting=True)
    text = compile_feedback([old, NEW], "DIFF\n", {"lib/calc.ml": "a\nb\nlet x = y\n"}, TYPE_ERROR)
    assert "lib/calc.ml:3:5: Unbound value y" in text and "   3| let x = y" in text
    assert OLD.message not in text
    assert "(1 other error(s) were in the project before your change.)" in text


async def test_a_pool_on_a_red_project_tells_old_errors_from_new(tmp_path: Path) -> None:
    root = tmp_path / "red"
    files = {
        "dune-project": "(lang dune 2.9)\n",
        "lib/dune": "(library (name calc))\n",
        "lib/calc.ml": "let double x = 2 * x\n",
        "lib/other.ml": 'let broken : int = "not an int"\n',
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    pool = ShadowPool(root, 2, cache=tmp_path / "cache")
    try:
        await pool.warm(120, lambda done, total: None)
        fine = await pool.check({"lib/calc.ml": "let double x = x + x\n"}, 120, False)
        assert fine.status == TYPE_ERROR and not fine.failed
        [error] = fine.errors
        assert error.preexisting and error.path == "lib/other.ml"
        bad = await pool.check({"lib/calc.ml": "let double x = x +. 1\n"}, 120, False)
        assert bad.failed and [e.path for e in bad.new_errors] == ["lib/calc.ml"]
        assert [e.path for e in bad.errors if e.preexisting] == ["lib/other.ml"]
        # once the old error is fixed on disk, it is nobody's baseline any more
        (root / "lib/other.ml").write_text("let broken : int = 1\n")
        pool.changed("lib/other.ml")
        assert (await pool.check({}, 120, False)).status == OK
        again = await pool.check({"lib/calc.ml": "let double x = x +. 1\n"}, 120, False)
        assert again.failed and not any(e.preexisting for e in again.errors)
    finally:
        pool.close()
