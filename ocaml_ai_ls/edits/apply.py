"""Place hunks in a file by their content, never by their line numbers.

A cascade where each step stays exact (DESIGN.md): exact lines → trailing
whitespace ignored → leading and trailing whitespace ignored (re-indenting
added lines when the match shows a uniform indentation offset) → leading and
trailing blank lines of the hunk ignored. A match must be unique; a line
number only chooses between equal matches when the other hunks agree on one
drift. Kept lines stay byte-for-byte as in the file. All hunks or none.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .model import FileApplyResult, FileEdit, Hunk, HunkFailure

_LINE = re.compile(r"([^\r\n]*)(\r\n|\r|\n|$)")
_NUMBERED = re.compile(r"^\s*\d+\s?\| ?")
_NORMALISE: tuple[Callable[[str], str], ...] = (
    lambda s: s,
    str.rstrip,
    str.strip,
)
#: A file this long and a whole-file block under half of it is a fragment.
FRAGMENT_MIN_LINES = 10


@dataclass(frozen=True)
class _Lines:
    """A file as (content, terminator) pairs and its dominant line ending."""

    content: list[str]
    ends: list[str]
    eol: str

    @classmethod
    def of(cls, text: str) -> _Lines:
        content: list[str] = []
        ends: list[str] = []
        for match in _LINE.finditer(text):
            if match.group(0) == "" and match.start() == len(text):
                break
            content.append(match.group(1))
            ends.append(match.group(2))
        crlf = text.count("\r\n")
        eol = "\r\n" if crlf and crlf >= text.count("\n") - crlf else "\n"
        return cls(content, ends, eol)

    def text(self) -> str:
        return "".join(c + e for c, e in zip(self.content, self.ends, strict=True))


@dataclass(frozen=True)
class _Placed:
    start: int
    old: tuple[str, ...]
    new: tuple[str, ...]
    level: int


def _matches(lines: list[str], old: Sequence[str], level: int) -> list[int]:
    norm = _NORMALISE[level]
    want = [norm(x) for x in old]
    have = [norm(x) for x in lines] if level else lines
    first = want[0]
    out = []
    for i in range(len(have) - len(want) + 1):
        if have[i] == first and have[i : i + len(want)] == want:
            out.append(i)
    return out


def _indent_offset(file_lines: Sequence[str], old: Sequence[str]) -> tuple[str, str] | None:
    """(remove, add): the uniform prefix change from hunk lines to file lines."""
    offset: tuple[str, str] | None = None
    for have, want in zip(file_lines, old, strict=True):
        if not have.strip():
            continue
        h_ind = have[: len(have) - len(have.lstrip())]
        w_ind = want[: len(want) - len(want.lstrip())]
        if h_ind.startswith(w_ind):
            pair = ("", h_ind[len(w_ind) :])
        elif w_ind.startswith(h_ind):
            pair = (w_ind[len(h_ind) :], "")
        else:
            return None
        if offset is None:
            offset = pair
        elif offset != pair:
            return None
    return offset


def _strip_numbers(hunk: Hunk, lines: list[str]) -> Hunk:
    """Undo line-number prefixes copied from our prompt ("  12| code")."""
    body = [x for x in hunk.old if x.strip()]
    if not body or not all(_NUMBERED.match(x) for x in body):
        return hunk
    if sum(1 for x in lines if _NUMBERED.match(x)) > len(lines) // 2:
        return hunk  # the file itself looks like that
    return Hunk(
        tuple(_NUMBERED.sub("", x, count=1) for x in hunk.old),
        tuple(_NUMBERED.sub("", x, count=1) for x in hunk.new),
        hunk.line_hint,
    )


def _trim_blank(hunk: Hunk) -> Hunk | None:
    old, new = list(hunk.old), list(hunk.new)
    changed = False
    while old and not old[0].strip():
        old.pop(0)
        if new and not new[0].strip():
            new.pop(0)
        changed = True
    while old and not old[-1].strip():
        old.pop()
        if new and not new[-1].strip():
            new.pop()
        changed = True
    if not changed or not old:
        return None
    return Hunk(tuple(old), tuple(new), hunk.line_hint)


def _locate(lines: list[str], hunk: Hunk) -> tuple[list[_Placed], int]:
    """Matches at the first cascade level that has any; (matches, level)."""
    for candidate in (hunk, _trim_blank(hunk)):
        if candidate is None:
            continue
        for level in range(len(_NORMALISE)):
            found = _matches(lines, candidate.old, level)
            if level == 2 and len(found) > 1:  # prefer places with one indentation offset
                uniform = [
                    i
                    for i in found
                    if _indent_offset(lines[i : i + len(candidate.old)], candidate.old) is not None
                ]
                found = uniform or found
            if found:
                return [_Placed(i, candidate.old, candidate.new, level) for i in found], level
    return [], -1


def _closest(lines: list[str], old: Sequence[str]) -> str | None:
    """A hint for a repair round: the most similar window of the file."""
    if not lines or not old:
        return None
    size = len(old)
    want = "\n".join(x.strip() for x in old)
    best, best_i = 0.0, 0
    step = max(1, len(lines) // 2000)
    for i in range(0, max(1, len(lines) - size + 1), step):
        window = "\n".join(x.strip() for x in lines[i : i + size])
        matcher = difflib.SequenceMatcher(None, want, window, autojunk=False)
        if matcher.real_quick_ratio() <= best or matcher.quick_ratio() <= best:
            continue
        ratio = matcher.ratio()
        if ratio > best:
            best, best_i = ratio, i
    if best < 0.5:
        return None
    shown = "\n".join(lines[best_i : best_i + size])
    return f"closest lines {best_i + 1}-{best_i + size}:\n{shown}"


def _replacement(file_part: list[str], placed: _Placed) -> list[str]:
    """New lines for the matched region: kept lines from the file, added ones re-indented."""
    offset = _indent_offset(file_part, placed.old) if placed.level else None
    out: list[str] = []
    matcher = difflib.SequenceMatcher(None, placed.old, placed.new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.extend(file_part[i1:i2])
            continue
        for line in placed.new[j1:j2]:
            if offset is not None and line.strip():
                remove, add = offset
                if remove and line.startswith(remove):
                    line = line[len(remove) :]
                line = add + line
            out.append(line)
    return out


def _resolve(
    lines: list[str], hunks: Sequence[Hunk]
) -> tuple[list[_Placed | None], list[HunkFailure]]:
    """Place every hunk in `lines` (the original text); ambiguity settled by drift."""
    found = [_locate(lines, h)[0] for h in hunks]
    placed: list[_Placed | None] = [f[0] if len(f) == 1 else None for f in found]
    drifts = {
        p.start - h.line_hint
        for p, h in zip(placed, hunks, strict=True)
        if p is not None and h.line_hint is not None
    }
    failures: list[HunkFailure] = []
    total = len(hunks)
    for k, (hunk, options) in enumerate(zip(hunks, found, strict=True)):
        if placed[k] is not None:
            continue
        name = f"hunk {k + 1} of {total}"
        if not options:
            failures.append(
                HunkFailure(k, f"{name}: its lines were not found", _closest(lines, hunk.old))
            )
            continue
        if hunk.line_hint is not None and len(drifts) == 1:
            expected = hunk.line_hint + next(iter(drifts))
            chosen = [p for p in options if p.start == expected]
            if len(chosen) == 1:
                placed[k] = chosen[0]
                continue
        where = ", ".join(str(p.start + 1) for p in options[:5])
        failures.append(
            HunkFailure(
                k,
                f"{name} matches {len(options)} places (lines {where}); include more context lines",
            )
        )
    return placed, failures


def _splice(lines: _Lines, placed: Sequence[_Placed]) -> _Lines:
    content, ends = list(lines.content), list(lines.ends)
    for p in sorted(placed, key=lambda p: p.start, reverse=True):
        if not p.old:  # append at the end
            if content and ends[-1] == "":
                ends[-1] = lines.eol
                new_ends = [lines.eol] * (len(p.new) - 1) + [""]
            else:
                new_ends = [lines.eol] * len(p.new)
            content.extend(p.new)
            ends.extend(new_ends)
            continue
        end = p.start + len(p.old)
        part = content[p.start : end]
        new = _replacement(part, p)
        new_ends = [lines.eol] * len(new)
        if new_ends:  # the region's last terminator ("" at the end of a file without one)
            new_ends[-1] = ends[end - 1]
        content[p.start : end] = new
        ends[p.start : end] = new_ends
    return _Lines(content, ends, lines.eol)


def _overlaps(placed: Sequence[_Placed]) -> int | None:
    spans = sorted((p.start, p.start + len(p.old), k) for k, p in enumerate(placed) if p.old)
    for (_, end1, _), (start2, _, k) in itertools.pairwise(spans):
        if start2 < end1:
            return k
    return None


def apply_hunks(text: str, hunks: Sequence[Hunk]) -> FileApplyResult:
    """The text with every hunk applied, or the failures; never raises."""
    try:
        return _apply_hunks(text, hunks)
    except Exception as exc:  # an applier bug must not take the server down
        return FileApplyResult(None, (HunkFailure(0, f"internal error ({type(exc).__name__})"),))


def _apply_hunks(text: str, hunks: Sequence[Hunk]) -> FileApplyResult:
    lines = _Lines.of(text)
    hunks = [_strip_numbers(h, lines.content) for h in hunks if h.old or h.new]
    if not hunks:
        return FileApplyResult(text)
    real = [h for h in hunks if h.old]
    appends = [_Placed(len(lines.content), (), h.new, 0) for h in hunks if not h.old]
    placed, failures = _resolve(lines.content, real)
    ok = [p for p in placed if p is not None]
    if not failures:
        clash = _overlaps(ok)
        if clash is None:
            return FileApplyResult(
                _splice(lines, ok + appends).text(), (), tuple(range(len(hunks)))
            )
        failures = [HunkFailure(clash, f"hunk {clash + 1} overlaps another hunk")]
    sequential = _sequential(lines, hunks)
    if sequential is not None:
        return FileApplyResult(sequential, (), tuple(range(len(hunks))))
    applied = tuple(k for k, p in enumerate(placed) if p is not None)
    return FileApplyResult(None, tuple(failures), applied)


def _sequential(lines: _Lines, hunks: Sequence[Hunk]) -> str | None:
    """Aider's semantics: each block against the text the previous ones produced."""
    current = lines
    for hunk in hunks:
        if not hunk.old:
            current = _splice(current, [_Placed(len(current.content), (), hunk.new, 0)])
            continue
        found, _ = _locate(current.content, hunk)
        if len(found) != 1:
            return None
        current = _splice(current, found)
    return current.text()


def apply_file_edit(text: str | None, edit: FileEdit) -> FileApplyResult:
    """One file's edit against its current text (None: the file does not exist)."""
    name = edit.path or "the file"
    if edit.content is not None:
        if text is None:
            return FileApplyResult(edit.content)
        if edit.create:
            return FileApplyResult(
                None, (HunkFailure(0, f"{name} already exists; edit it with SEARCH/REPLACE"),)
            )
        old_lines = len(_Lines.of(text).content)
        new_lines = len(_Lines.of(edit.content).content)
        if old_lines > FRAGMENT_MIN_LINES and new_lines < old_lines / 2:
            return FileApplyResult(
                None,
                (
                    HunkFailure(
                        0,
                        f"the block for {name} has {new_lines} of its {old_lines} lines: it looks "
                        "like a fragment, not the whole file; use SEARCH/REPLACE blocks",
                    ),
                ),
            )
        eol = _Lines.of(text).eol
        content = edit.content.replace("\n", eol) if eol != "\n" else edit.content
        return FileApplyResult(content)
    if text is None:
        if edit.hunks and all(not h.old for h in edit.hunks):
            body = [line for h in edit.hunks for line in h.new]
            return FileApplyResult("\n".join(body) + "\n" if body else "")
        return FileApplyResult(None, (HunkFailure(0, f"{name} was not found"),))
    if not edit.hunks:
        return FileApplyResult(None, (HunkFailure(0, f"no change given for {name}"),))
    return apply_hunks(text, edit.hunks)
