"""The applier: by content, exact at each step, all or nothing."""

from __future__ import annotations

from ocaml_ai_ls.edits.apply import apply_file_edit, apply_hunks
from ocaml_ai_ls.edits.model import FileEdit, Hunk

SRC = "let a = 1\n\nmodule M = struct\n  let f x =\n    x + 1\nend\n\nlet g = 2\n"


def test_trailing_whitespace_and_indentation_drift() -> None:
    hunk = Hunk(("let f x =  ", "  x + 1"), ("let f x =", "  x + 2", "  |> succ"))
    result = apply_hunks(SRC, [hunk])
    # the kept line stays as in the file; added lines get the file's indentation
    assert result.text == SRC.replace("    x + 1\n", "    x + 2\n    |> succ\n")


def test_ambiguous_hunk_is_refused_with_places() -> None:
    src = "let x = 1\nend\n\nlet y = 2\nend\n\n"
    result = apply_hunks(src, [Hunk(("end", ""), ("end", "", "(* c *)"))])
    assert result.text is None and "matches 2 places (lines 2, 5)" in result.failures[0].reason


def test_ambiguity_settled_by_the_drift_of_the_other_hunks() -> None:
    src = "let a = 1\nend\nlet b = 2\nlet c = 3\nend\nlet d = 4\n"
    hunks = [Hunk(("let a = 1",), ("let a = 10",), 10), Hunk(("end",), ("end;;",), 14)]
    result = apply_hunks(src, hunks)  # both hints are 10 too far: the second `end` is meant
    assert result.text == src.replace("let c = 3\nend\n", "let c = 3\nend;;\n").replace(
        "let a = 1", "let a = 10"
    )


def test_not_found_gives_the_closest_lines() -> None:
    result = apply_hunks(SRC, [Hunk(("let g = 3",), ("let g = 4",))])
    assert result.text is None and result.failures[0].closest is not None
    assert "let g = 2" in result.failures[0].closest


def test_all_or_nothing_and_overlap() -> None:
    ok, bad = Hunk(("let a = 1",), ("let a = 2",)), Hunk(("nope",), ("x",))
    result = apply_hunks(SRC, [ok, bad])
    assert result.text is None and result.applied == (0,)
    # two hunks claiming the same line, and no order in which both apply
    overlap = apply_hunks(
        SRC,
        [
            Hunk(("let a = 1", "", "module M = struct"), ("X",)),
            Hunk(("module M = struct", "  let f x ="), ("Y",)),
        ],
    )
    assert overlap.text is None and "overlaps" in overlap.failures[0].reason


def test_sequential_blocks_as_aider_applies_them() -> None:
    hunks = [Hunk(("let a = 1",), ("let a = 1", "let b = 5")), Hunk(("let b = 5",), ("let b = 6",))]
    assert apply_hunks(SRC, hunks).text == SRC.replace("let a = 1\n", "let a = 1\nlet b = 6\n")


def test_crlf_and_missing_final_newline_are_kept() -> None:
    src = "let a = 1\r\nlet b = 2"
    result = apply_hunks(src, [Hunk(("let b = 2",), ("let b = 3", "let c = 4"))])
    assert result.text == "let a = 1\r\nlet b = 3\r\nlet c = 4"


def test_line_number_prefixes_copied_from_the_prompt() -> None:
    hunk = Hunk(("   8| let g = 2",), ("   8| let g = 3",))
    assert apply_hunks(SRC, [hunk]).text == SRC.replace("let g = 2", "let g = 3")


def test_file_edits_create_replace_and_guard_fragments() -> None:
    assert apply_file_edit(None, FileEdit("n.ml", content="let n = 1\n", create=True)).text
    assert apply_file_edit("x", FileEdit("n.ml", content="y\n", create=True)).text is None
    big = "".join(f"let v{i} = {i}\n" for i in range(40))
    fragment = apply_file_edit(big, FileEdit("b.ml", content="let v1 = 100\n"))
    assert fragment.text is None and "fragment" in fragment.failures[0].reason
    assert (
        apply_file_edit(None, FileEdit("n.ml", (Hunk((), ("let n = 1",)),))).text == "let n = 1\n"
    )
    assert apply_file_edit(None, FileEdit("n.ml", (Hunk(("x",), ("y",)),))).text is None
    appended = apply_file_edit("let a = 1", FileEdit("a.ml", (Hunk((), ("let b = 2",)),)))
    assert appended.text == "let a = 1\nlet b = 2"
