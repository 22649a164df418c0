"""Prompt strategies: each asks for one edit format, and an answer written the way
that prompt shows is read and applied by the one parser."""

from __future__ import annotations

import pytest

from ocaml_ai_ls.config import STRATEGIES
from ocaml_ai_ls.edits.apply import apply_file_edit
from ocaml_ai_ls.edits.parse import parse_answer
from ocaml_ai_ls.prompt import FORMATS, apply_feedback, compile_feedback, system_prompt
from ocaml_ai_ls.verify.result import TYPE_ERROR

OLD = "let area = function\n  | Circle r -> pi *. r *. r\n  | Rect (w, h) -> w *. h\n"
NEW = OLD.replace("w *. h", "abs_float (w *. h)")
ANSWERS = {
    "search_replace": (
        "Rectangles are non-negative now.\n\nlib/shapes.ml\n<<<<<<< SEARCH\n"
        "  | Rect (w, h) -> w *. h\n=======\n  | Rect (w, h) -> abs_float (w *. h)\n"
        ">>>>>>> REPLACE\n"
    ),
    "unified_diff": (
        "Rectangles are non-negative now.\n\n--- a/lib/shapes.ml\n+++ b/lib/shapes.ml\n"
        "@@ -2,2 +2,2 @@\n   | Circle r -> pi *. r *. r\n-  | Rect (w, h) -> w *. h\n"
        "+  | Rect (w, h) -> abs_float (w *. h)\n"
    ),
    "whole_file": f"Rectangles are non-negative now.\n\nlib/shapes.ml\n```ocaml\n{NEW}```\n",
}


def test_every_strategy_has_a_prompt_and_an_example_answer() -> None:
    assert set(FORMATS) == set(STRATEGIES) == set(ANSWERS)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_an_answer_in_the_asked_format_applies(strategy: str) -> None:
    prompt = system_prompt(strategy)
    assert FORMATS[strategy] in prompt and "expert OCaml programmer" in prompt
    others = [FORMATS[s] for s in STRATEGIES if s != strategy]
    assert not any(other in prompt for other in others)
    parsed = parse_answer(ANSWERS[strategy])
    assert parsed.usable and not parsed.problems
    [edit] = parsed.edits
    assert edit.path == "lib/shapes.ml"
    assert apply_file_edit(OLD, edit).text == NEW


def test_repair_prompts_ask_for_the_arms_format() -> None:
    assert "whole text of every file" in apply_feedback("no edit found", "whole_file")
    assert "unified diff" in apply_feedback("no edit found", "unified_diff")
    text = compile_feedback([], "DIFF\n", {}, TYPE_ERROR, "whole_file")
    assert text.endswith("Answer with the whole text of every file that must change.")
