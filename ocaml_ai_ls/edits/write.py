"""A known change (texts before → after) written as the model is asked to write it.

The inverse of `parse.py` for one edit format (`model.strategy`): training rows
show the model answers in the very format the prompt asks for, so what it learns
to write is what the pipeline reads. Whether the text reads back to the same
change is not assumed here: `dataset export` parses and applies every answer
with the pipeline's own code and leaves out those that do not come back exact.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .workspace_edit import split_keepends

#: Context lines a SEARCH section may grow by on each side to be unique in its file.
MAX_CONTEXT = 40


class NotWritable(ValueError):
    """A change the edit format cannot express (deleting a file); the message says why."""


#: Relative path → text (None: the file does not exist).
Texts = Mapping[str, str | None]


def write_answer(before: Texts, after: Texts, strategy: str) -> str:
    """The answer that makes `before` into `after` (both keyed by the changed paths)."""
    paths = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    if not paths:
        raise NotWritable("the change is empty")
    for path in paths:
        new = after.get(path)
        if new is None:
            raise NotWritable(f"the change deletes {path}, which no edit format can say")
        old = before.get(path)
        if old and _ends_line(old) and not _ends_line(new):
            raise NotWritable(f"the change removes the newline at the end of {path}")
        if strategy == "whole_file" and new and not _ends_line(new):
            raise NotWritable(f"the change leaves {path} without a final newline")
    if strategy == "search_replace":
        return "\n".join(_search_replace(p, before.get(p), after[p] or "") for p in paths)
    if strategy == "unified_diff":
        return "".join(_unified(p, before.get(p), after[p] or "") for p in paths)
    if strategy == "whole_file":
        return "\n".join(_whole(p, after[p] or "") for p in paths)
    raise NotWritable(f"unknown strategy {strategy!r}")


def _ends_line(text: str) -> bool:
    return text.endswith(("\n", "\r"))


def _lines(text: str) -> list[str]:
    """Lines without their terminators, as the parser reads an answer."""
    return [line.rstrip("\r\n") for line in split_keepends(text)]


def _new_lines(old_text: str, new_text: str) -> list[str]:
    """The new text's lines; an empty last line when it gains a final newline (the
    applier gives a replaced last line the old one's missing terminator, and ends the
    text with the empty line's)."""
    lines = _lines(new_text)
    if old_text and not _ends_line(old_text) and _ends_line(new_text):
        lines.append("")
    return lines


def _block(path: str, old: Sequence[str], new: Sequence[str]) -> str:
    body = ["<<<<<<< SEARCH", *old, "=======", *new, ">>>>>>> REPLACE"]
    return "\n".join([path, *body]) + "\n"


@dataclass
class _Region:
    """Lines a[i1:i2] become b[j1:j2]; `k` lines of context on each side."""

    i1: int
    i2: int
    j1: int
    j2: int
    k: int = 0


def _count(lines: Sequence[str], old: Sequence[str]) -> int:
    n = len(old)
    return sum(1 for i in range(len(lines) - n + 1) if list(lines[i : i + n]) == list(old))


def _grow(a: Sequence[str], r: _Region) -> _Region:
    """Context added until the SEARCH lines are not empty and match once in the file."""
    while True:
        lo, hi = max(0, r.i1 - r.k), min(len(a), r.i2 + r.k)
        old = a[lo:hi]
        if old and _count(a, old) == 1:
            return r
        if (lo == 0 and hi == len(a)) or r.k >= MAX_CONTEXT:
            return r
        r.k += 1


def _span(a: Sequence[str], r: _Region) -> tuple[int, int]:
    return max(0, r.i1 - r.k), min(len(a), r.i2 + r.k)


def _search_replace(path: str, old_text: str | None, new_text: str) -> str:
    if old_text is None:
        return _block(path, [], _lines(new_text))
    a, b = _lines(old_text), _new_lines(old_text, new_text)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    regions: list[_Region] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        region = _grow(a, _Region(i1, i2, j1, j2))
        # blocks are placed in the original text, so they must not overlap: merge
        while regions and _span(a, regions[-1])[1] >= _span(a, region)[0]:
            last = regions.pop()
            region = _grow(a, _Region(last.i1, region.i2, last.j1, region.j2))
        regions.append(region)
    blocks = []
    for r in regions:
        lo, hi = _span(a, r)
        before, after = r.i1 - lo, hi - r.i2
        blocks.append(_block(path, a[lo:hi], b[r.j1 - before : r.j2 + after]))
    return "\n".join(blocks)


def _unified(path: str, old_text: str | None, new_text: str) -> str:
    a = [line + "\n" for line in _lines(old_text)] if old_text is not None else []
    b = [line + "\n" for line in _new_lines(old_text or "", new_text)]
    src = f"a/{path}" if old_text is not None else "/dev/null"
    return "".join(difflib.unified_diff(a, b, src, f"b/{path}", n=3))


def _whole(path: str, text: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    lang = "ocaml" if path.endswith((".ml", ".mli")) else ""
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"{path}\n{fence}{lang}\n{body}{fence}\n"
