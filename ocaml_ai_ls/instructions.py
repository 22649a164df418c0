"""Instruction comments: `(* ai: make this tail recursive *)` in the code.

Found near the cursor with the comments query (restricted to a few lines, so a
code-action request stays cheap on big files), and removed by the same edit
that carries out the instruction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tree_sitter import QueryCursor

from .context.parsing import query
from .documents import Document
from .positions import EOL

_INSTRUCTION = re.compile(r"\A\(\*(?!\*)\s*ai\s*:\s*(?P<text>.*?)\s*\*\)\Z", re.S | re.I)
#: Lines around the cursor searched for an instruction comment.
NEARBY_LINES = 1


@dataclass(frozen=True)
class Instruction:
    text: str
    start_byte: int
    end_byte: int


def instruction_text(comment: str) -> str | None:
    """The instruction in a comment's source text, whitespace collapsed; else None."""
    match = _INSTRUCTION.match(comment)
    if match is None:
        return None
    text = " ".join(match.group("text").split())
    return text or None


def find_instructions(doc: Document, first_line: int, last_line: int) -> list[Instruction]:
    """Instruction comments touching lines first_line-1 .. last_line+1 (0-based)."""
    if doc.tree is None or doc.kind is None:
        return []
    index = doc.index
    start_line = max(0, first_line - NEARBY_LINES)
    end_line = last_line + NEARBY_LINES + 1
    start = index.starts[min(start_line, index.line_count - 1)]
    end = index.starts[end_line] if end_line < index.line_count else len(doc.data)
    cursor = QueryCursor(query(doc.kind, "comments"))
    cursor.set_byte_range(start, end)
    found: list[Instruction] = []
    for node in cursor.captures(doc.tree.root_node).get("comment", []):
        text = instruction_text(
            doc.data[node.start_byte : node.end_byte].decode("utf-8", "replace")
        )
        if text is not None:
            found.append(Instruction(text, node.start_byte, node.end_byte))
    found.sort(key=lambda i: i.start_byte)
    return found


def removal_span(data: bytes, start: int, end: int) -> tuple[int, int]:
    """The bytes to delete to remove a comment: its whole line(s) when it stands alone."""
    line_start = max(data.rfind(b"\n", 0, start), data.rfind(b"\r", 0, start)) + 1
    before = data[line_start:start]
    nl = EOL.search(data, end)
    line_end = nl.start() if nl else len(data)
    after = data[end:line_end]
    if not before.strip() and not after.strip():
        return line_start, (nl.end() if nl else line_end)
    if not after.strip():  # at the end of a code line: drop the blanks before it too
        return line_start + len(before.rstrip()), line_end
    return start, end + len(after) - len(after.lstrip())  # before code: drop blanks after
