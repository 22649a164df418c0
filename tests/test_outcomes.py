"""Outcomes of generations seen from the documents: applied, kept or undone."""

from __future__ import annotations

from ocaml_ai_ls.outcomes import OutcomeTracker, changed_lines

DIFF = (
    "--- a/lib/a.ml\n+++ b/lib/a.ml\n@@ -1,2 +1,2 @@\n let x = 1\n-let y = x\n+let y = abs x\n"
    "--- a/lib/a.mli\n+++ b/lib/a.mli\n@@ -1 +1,2 @@\n val x : int\n+val y : int\n"
)
BEFORE = "let x = 1\nlet y = x\n"
AFTER = "let x = 1\nlet y = abs x\n"


def tracker() -> tuple[OutcomeTracker, list[tuple[str, bool | None, bool | None]]]:
    seen: list[tuple[str, bool | None, bool | None]] = []
    return OutcomeTracker(lambda *report: seen.append(report)), seen


def test_the_lines_an_edit_adds_per_file() -> None:
    assert changed_lines(DIFF, "lib/a.ml") == (("let y = abs x",), False)
    assert changed_lines(DIFF, "lib/a.mli") == (("val y : int",), False)
    deletion = "--- a/b.ml\n+++ b/b.ml\n@@ -1,2 +1 @@\n let x = 1\n-let y = 2\n"
    assert changed_lines(deletion, "b.ml") == (("let y = 2",), True)


def test_an_offered_edit_is_applied_when_it_shows_and_accepted_if_kept_at_save() -> None:
    t, seen = tracker()
    t.watch("r1", "file:///a.ml", DIFF, "lib/a.ml", applied=False)
    t.changed("file:///a.ml", BEFORE)
    assert seen == []
    t.changed("file:///a.ml", AFTER)
    t.changed("file:///a.ml", AFTER + "\n")  # reported once
    t.settled("file:///a.ml", AFTER + "let z = 3\n", closed=False)
    assert seen == [("r1", True, None), ("r1", None, True)]


def test_an_undone_edit_is_rejected_and_a_never_applied_one_is_not_applied() -> None:
    t, seen = tracker()
    t.watch("r1", "file:///a.ml", DIFF, "lib/a.ml", applied=True)
    t.watch("r2", "file:///b.ml", DIFF, "lib/a.ml", applied=False)
    t.settled("file:///a.ml", BEFORE, closed=False)  # undone before the save
    t.settled("file:///b.ml", BEFORE, closed=True)
    assert seen == [("r1", None, False), ("r2", False, None)]
    t.settled("file:///a.ml", AFTER, closed=True)  # settled already: nothing more
    assert len(seen) == 2


def test_explicit_feedback_stops_the_guessing() -> None:
    t, seen = tracker()
    t.watch("r1", "file:///a.ml", DIFF, "lib/a.ml", applied=True)
    t.feedback("r1")
    t.settled("file:///a.ml", AFTER, closed=True)
    assert seen == []
