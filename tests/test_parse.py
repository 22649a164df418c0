"""The answer parser on the shapes models really produce."""

from __future__ import annotations

from ocaml_ai_ls.edits.model import Hunk
from ocaml_ai_ls.edits.parse import parse_answer


def test_unified_diff_in_prose_with_fence_and_header_numbers() -> None:
    result = parse_answer(
        "Sure.\n```diff\ndiff --git a/lib/a.ml b/lib/a.ml\nindex 1..2 100644\n"
        "--- a/lib/a.ml\n+++ b/lib/a.ml\n@@ -3,2 +3,2 @@ let f =\n x\n-y\n+z\n```\nBye."
    )
    [edit] = result.edits
    assert edit.path == "lib/a.ml"
    assert edit.hunks == (Hunk(("x", "y"), ("x", "z"), 2),)


def test_headers_without_numbers_and_hunks_without_file_header() -> None:
    result = parse_answer("@@ @@\n-a\n+b\n@@\n c\n-d\n")
    [edit] = result.edits
    assert edit.path == "" and [h.line_hint for h in edit.hunks] == [None, None]
    assert edit.hunks[1] == Hunk(("c", "d"), ("c",), None)


def test_new_file_and_deletion() -> None:
    result = parse_answer(
        "--- /dev/null\n+++ b/lib/n.ml\n@@ -0,0 +1,2 @@\n+let a = 1\n+let b = 2\n"
        "--- a/lib/old.ml\n+++ /dev/null\n@@ -1 +0,0 @@\n-let x = 1\n"
    )
    [edit] = result.edits
    assert edit.create and edit.content == "let a = 1\nlet b = 2\n" and edit.path == "lib/n.ml"
    assert any("deleting files is not supported" in p for p in result.problems)


def test_removed_line_that_looks_like_a_header() -> None:
    result = parse_answer("--- a.ml\n+++ a.ml\n@@ -1,2 +1,1 @@\n--- comment line\n keep\n")
    [edit] = result.edits
    assert edit.hunks[0].old == ("-- comment line", "keep")


def test_search_replace_paths_in_many_dresses() -> None:
    answer = (
        "**lib/a.ml**\n```ocaml\n<<<<<<< SEARCH\nlet a = 1\n=======\nlet a = 2\n>>>>>>> REPLACE\n```\n"
        "`lib/b.mli`:\n<<<<<<< SEARCH\nval b : int\n=======\nval b : float\n>>>>>>> REPLACE\n"
        "And one more for the same file:\n<<<<<<< SEARCH\nval c : int\n=======\n>>>>>>> REPLACE\n"
    )
    result = parse_answer(answer.replace("\n", "\r\n"))
    assert [(e.path, len(e.hunks)) for e in result.edits] == [("lib/a.ml", 1), ("lib/b.mli", 2)]
    assert result.edits[1].hunks[1] == Hunk(("val c : int",), ())


def test_unclosed_block_is_a_problem_and_others_still_count() -> None:
    result = parse_answer(
        "a.ml\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\nb.ml\n<<<<<<< SEARCH\nz\n"
    )
    assert [e.path for e in result.edits] == ["a.ml"]
    assert any("not closed" in p for p in result.problems)


def test_whole_file_block_after_a_path() -> None:
    result = parse_answer("lib/c.ml\n```ocaml\nlet c = 3\n```\n\n```ocaml\nlet ignored = 0\n```\n")
    [edit] = result.edits
    assert edit.path == "lib/c.ml" and edit.content == "let c = 3\n" and not edit.create


def test_no_edit_explains() -> None:
    result = parse_answer("I cannot do that.")
    assert not result.usable and "no edit found" in result.reason


def test_a_header_counts_only_when_its_line_counts_agree_with_the_body() -> None:
    def counted(text: str) -> list[bool]:
        return [h.counted for e in parse_answer(text).edits for h in e.hunks]

    assert counted("--- a/a.ml\n+++ b/a.ml\n@@ -3,2 +3,2 @@\n x\n-y\n+z\n") == [True]
    assert counted("--- a/a.ml\n+++ b/a.ml\n@@ -3,4 +3,2 @@\n x\n-y\n+z\n") == [False]
    assert counted("--- a/a.ml\n+++ b/a.ml\n@@ -3 +3 @@\n-y\n+z\n") == [True]  # 1 if left out
    assert counted("@@ @@\n-y\n+z\n") == [False]
    # an empty line ending the hunk may or may not be one of its lines: either count fits
    assert counted("--- a/a.ml\n+++ b/a.ml\n@@ -3,2 +3,2 @@\n x\n-y\n+z\n\nDone.\n") == [True]


def test_which_end_of_the_file_a_hunk_s_context_calls_for() -> None:
    def anchors(text: str) -> list[str]:
        return [h.anchor for e in parse_answer(text).edits for h in e.hunks]

    head = "--- a/a.ml\n+++ b/a.ml\n@@ @@\n"
    assert anchors(head + " x\n y\n+z\n") == ["end"]
    assert anchors(head + "+z\n x\n") == ["start"]
    assert anchors(head + " x\n+z\n y\n") == [""]
    assert anchors(head + " x\n y\n+z\n w\n") == ["end"]
    # an empty line after it may have been a context line: 1 after, 1 before
    assert anchors(head + " x\n+z\n\nThat is all.\n") == [""]
    assert anchors(head + " x\n+z\n") == ["end"]  # the answer's final newline is no line
