"""Positions in each encoding over text with multi-byte and astral characters."""

from __future__ import annotations

import pytest
from lsprotocol import types

from ocaml_ai_ls.positions import Encoding, LineIndex, encode, end_position

TEXT = 'let s = "é😀x"\r\nlet t = 1\rlet u = 2\nlast'


def pos(line: int, character: int) -> types.Position:
    return types.Position(line=line, character=character)


@pytest.mark.parametrize(
    ("encoding", "character"),
    [(Encoding.UTF16, 12), (Encoding.UTF8, 15), (Encoding.UTF32, 11)],
)
def test_position_after_emoji_maps_to_x(encoding: Encoding, character: int) -> None:
    index = LineIndex(encode(TEXT), encoding)
    offset = index.offset(pos(0, character))
    assert encode(TEXT)[offset : offset + 1] == b"x"
    assert index.position(offset) == pos(0, character)


def test_lines_end_at_crlf_cr_and_lf() -> None:
    index = LineIndex(encode(TEXT), Encoding.UTF16)
    assert index.line_count == 4
    assert [index.line_text(i) for i in range(4)] == [
        'let s = "é😀x"',
        "let t = 1",
        "let u = 2",
        "last",
    ]


def test_offsets_clamp_and_never_split_a_character() -> None:
    index = LineIndex(encode(TEXT), Encoding.UTF8)
    start_of_e = encode(TEXT).index("é".encode())
    # a UTF-8 column inside the two bytes of é snaps back to its start
    assert index.offset(pos(0, start_of_e + 1)) == start_of_e
    # past the end of a line: the end of that line, not the next line
    assert index.offset(pos(1, 99)) == encode(TEXT).index(b"\r", 20)
    assert index.offset(pos(99, 0)) == len(encode(TEXT))


def test_utf16_column_inside_surrogate_pair_snaps_to_the_character() -> None:
    index = LineIndex(encode(TEXT), Encoding.UTF16)
    emoji = encode(TEXT).index("😀".encode())
    assert index.offset(pos(0, 11)) == emoji


def test_tree_sitter_points_count_newlines_only() -> None:
    index = LineIndex(encode("a\rb\nc"), Encoding.UTF16)
    assert index.ts_point(4) == (1, 0)
    assert index.position(4) == pos(2, 0)


def test_end_position() -> None:
    assert end_position("ab\ncd😀", Encoding.UTF16) == pos(1, 4)
    assert end_position("ab\n", Encoding.UTF8) == pos(1, 0)
