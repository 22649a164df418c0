"""The command's argument: accepted in its documented shape, refused clearly otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from ocaml_ai_ls.request import RequestError, parse_request, request_json

RANGE = {"start": {"line": 3, "character": 0}, "end": {"line": 1, "character": 2}}


def test_full_argument_round_trips() -> None:
    req = parse_request(
        [
            {
                "uri": "file:///p/a.ml",
                "instruction": " do it ",
                "range": RANGE,
                "candidates": 3,
                "apply": True,
            }
        ]
    )
    assert req.instruction == "do it" and req.candidates == 3 and req.apply
    assert req.range is not None and req.range.start.line == 1  # reversed ranges are put in order
    again = parse_request(request_json(req))
    assert again == req


@pytest.mark.parametrize(
    ("arg", "field"),
    [
        ("nope", "one object"),
        ({"instruction": "x"}, "uri"),
        ({"uri": "http://x/a.ml", "instruction": "x"}, "uri"),
        ({"uri": "file:///a.ml", "instruction": "  "}, "instruction"),
        ({"uri": "file:///a.ml", "instruction": "x" * 5000}, "instruction"),
        ({"uri": "file:///a.ml", "instruction": "x", "candidates": 0}, "candidates"),
        ({"uri": "file:///a.ml", "instruction": "x", "candidates": True}, "candidates"),
        ({"uri": "file:///a.ml", "instruction": "x", "apply": "yes"}, "apply"),
        ({"uri": "file:///a.ml", "instruction": "x", "range": {"start": 1}}, "range"),
        (
            {
                "uri": "file:///a.ml",
                "instruction": "x",
                "range": {
                    "start": {"line": -1, "character": 0},
                    "end": {"line": 0, "character": 0},
                },
            },
            "range",
        ),
    ],
)
def test_bad_arguments_name_the_field(arg: Any, field: str) -> None:
    with pytest.raises(RequestError, match=field):
        parse_request(arg)
