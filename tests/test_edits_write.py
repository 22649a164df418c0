"""A known change written in each edit format reads back, through the pipeline's
parser and applier, to the same texts (the round trip `dataset export` relies on)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocaml_ai_ls.edits.apply import apply_file_edit
from ocaml_ai_ls.edits.parse import parse_answer
from ocaml_ai_ls.edits.write import NotWritable, write_answer

STRATEGIES = ("search_replace", "unified_diff", "whole_file")


def read_back(answer: str, before: dict[str, str | None]) -> dict[str, str | None]:
    parsed = parse_answer(answer)
    assert parsed.usable, parsed.reason
    out = dict(before)
    for edit in parsed.edits:
        result = apply_file_edit(out.get(edit.path), edit)
        assert result.text is not None, result.failures
        out[edit.path] = result.text
    return out


SHAPES = """\
let pi = 4.0 *. atan 1.0

let area = function
  | Circle r -> pi *. r *. r
  | Rect (w, h) -> w *. h

let perimeter = function
  | Circle r -> 2.0 *. pi *. r
  | Rect (w, h) -> 2.0 *. (w +. h)
"""


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_change_reads_back_in_every_format(strategy: str) -> None:
    after = SHAPES.replace("-> w *. h", "-> abs_float (w *. h)")
    before: dict[str, str | None] = {"lib/shapes.ml": SHAPES}
    answer = write_answer(before, {"lib/shapes.ml": after}, strategy)
    assert read_back(answer, before) == {"lib/shapes.ml": after}


def test_search_grows_until_it_matches_once() -> None:
    """`  | Rect _ -> 0.0` is in both functions: the block takes context to be unique."""
    before = "let f = function\n  | Rect _ -> 0.0\n\nlet g = function\n  | Rect _ -> 0.0\n"
    after = before[: before.rindex("0.0")] + "1.0\n"
    answer = write_answer({"a.ml": before}, {"a.ml": after}, "search_replace")
    assert "let g = function" in answer and "let f" not in answer
    assert read_back(answer, {"a.ml": before}) == {"a.ml": after}


def test_a_created_file_and_an_edited_one() -> None:
    before: dict[str, str | None] = {"a.ml": "let a = 1\n", "b.ml": None}
    after: dict[str, str | None] = {"a.ml": "let a = 2\n", "b.ml": "let b = A.a\n"}
    for strategy in STRATEGIES:
        assert read_back(write_answer(before, after, strategy), before) == after


def test_a_deleted_file_cannot_be_written() -> None:
    with pytest.raises(NotWritable, match=r"deletes a\.ml"):
        write_answer({"a.ml": "let a = 1\n"}, {"a.ml": None}, "search_replace")


_LINES = st.lists(st.sampled_from(["let x = 1", "", "  x", "let y = 2", "(* c *)", "in"]))


@settings(max_examples=200, deadline=None)
@given(
    old=_LINES.filter(bool),
    edits=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 3), _LINES), max_size=3),
)
def test_search_replace_reads_back_or_is_refused_whole(
    old: list[str], edits: list[tuple[int, int, list[str]]]
) -> None:
    """Any line change of a file with repeated lines: the answer reads back exactly."""
    new = list(old)
    for at, drop, add in edits:
        at = min(at, len(new))
        new[at : at + drop] = add
    before_text, after_text = "\n".join(old) + "\n", "\n".join(new) + "\n"
    if before_text == after_text:
        return
    answer = write_answer({"f.ml": before_text}, {"f.ml": after_text}, "search_replace")
    parsed = parse_answer(answer)
    result = apply_file_edit(before_text, parsed.edits[0]) if parsed.usable else None
    # a file whose every line repeats may leave no unique SEARCH: then the applier
    # refuses it (the export counts it), never puts it at a wrong place
    if result is not None and result.text is not None:
        assert result.text == after_text


@pytest.mark.parametrize("strategy", ["search_replace", "unified_diff"])
def test_a_final_newline_gained_reads_back(strategy: str) -> None:
    before: dict[str, str | None] = {"dune": "(library\n (name a))"}
    for after in ("(library\n (name a))\n", "(library\n (name b))\n"):
        answer = write_answer(before, {"dune": after}, strategy)
        assert read_back(answer, before) == {"dune": after}


def test_a_final_newline_lost_cannot_be_written() -> None:
    """No format can say it (the applier keeps a line's terminator): refused, not wrong."""
    with pytest.raises(NotWritable, match=r"removes the newline at the end of a\.ml"):
        write_answer({"a.ml": "let a = 1\n"}, {"a.ml": "let a = 2"}, "search_replace")
    with pytest.raises(NotWritable, match="without a final newline"):
        write_answer({"a.ml": "let a = 1"}, {"a.ml": "let a = 2"}, "whole_file")
