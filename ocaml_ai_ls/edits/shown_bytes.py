"""Edits of a file with bytes that are not UTF-8, made on the text the model saw.

The model sees such a byte as U+FFFD (`source_text.for_display`), so its SEARCH
lines quote U+FFFD where the file has the byte. Such an edit is applied to the text as
shown (each byte one U+FFFD, so lines and columns are the same), then the bytes
are put back: unchanged lines are the file's own; a changed block that quotes as
many U+FFFD as the lines it replaces had such bytes gets them back in order
(the model copied them); any other U+FFFD would write a character where the file
had a byte, so the edit is refused rather than written wrong.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable

from ..source_text import for_display
from .model import FileApplyResult, FileEdit, HunkFailure

_REPLACEMENT = "\ufffd"
_ESCAPED = re.compile("[\udc80-\udcff]")


def has_raw_bytes(text: str | None) -> bool:
    """Whether the text holds bytes that are not UTF-8 (see `source_text`)."""
    return text is not None and _ESCAPED.search(text) is not None


def quotes_shown_bytes(edit: FileEdit) -> bool:
    """Whether the edit holds U+FFFD, as a model quoting such bytes writes them (a
    diff with the bytes themselves, as `git diff` prints them, applies as it is)."""
    if edit.content is not None:
        return _REPLACEMENT in edit.content
    return any(_REPLACEMENT in line for h in edit.hunks for line in (*h.old, *h.new))


def apply_as_shown(
    text: str, name: str, apply: Callable[[str], FileApplyResult]
) -> FileApplyResult:
    """`apply` on the text as the model saw it, the file's bytes put back."""
    result = apply(for_display(text))
    if result.text is None:
        return result
    restored = _restore(text, result.text)
    if restored is None:
        reason = (
            f"the edit writes U+FFFD, which stands for a byte of {name} that is not UTF-8, "
            "where the byte it means cannot be told; keep U+FFFD only where it was"
        )
        return FileApplyResult(None, (HunkFailure(0, reason),), result.applied)
    return FileApplyResult(restored, result.failures, result.applied)


def _restore(original: str, new: str) -> str | None:
    """`new` (made from `original` as shown) with the original's bytes back, or None."""
    old_lines = original.splitlines(keepends=True)
    shown = [for_display(line) for line in old_lines]
    new_lines = new.splitlines(keepends=True)
    out: list[str] = []
    matcher = difflib.SequenceMatcher(None, shown, new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.extend(old_lines[i1:i2])
            continue
        block = "".join(new_lines[j1:j2])
        wanted = block.count(_REPLACEMENT)
        if not wanted:
            out.append(block)
            continue
        replaced = "".join(old_lines[i1:i2])
        raw = _ESCAPED.findall(replaced)
        if _REPLACEMENT in replaced or len(raw) != wanted:
            return None  # which U+FFFD is a byte, and which one, cannot be told
        parts = block.split(_REPLACEMENT)
        out.append(parts[0] + "".join(b + p for b, p in zip(raw, parts[1:], strict=True)))
    return "".join(out)
