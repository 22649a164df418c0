"""Place hunks in a file by their content; line numbers only choose between equal matches.

A cascade where each step stays exact (DESIGN.md): exact lines → trailing
whitespace ignored → leading and trailing whitespace ignored → leading and
trailing blank lines of the hunk ignored. A match must be unique, unless
exactly one of the equal matches sits where the header says (after the drift
the other hunks agree on, if they agree on one; alone in its file, only a
header whose counts agree with its body), or at the end of the file its
context calls for (fewer context lines after the changes than before: the
end). When leading whitespace had to be ignored, the `-` lines decide how
the added lines are re-indented, else the file's own indentation where they
go decides; when nothing decides, the hunk is refused, never guessed. Kept
lines stay byte-for-byte as in the file. All hunks or none.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .model import FileApplyResult, FileEdit, Hunk, HunkFailure
from .shown_bytes import apply_as_shown, has_raw_bytes, quotes_shown_bytes

_LINE = re.compile(r"([^\r\n]*)(\r\n|\r|\n|$)")
_NUMBERED = re.compile(r"^\s*\d+\s?\| ?")
_NORMALISE: tuple[Callable[[str], str], ...] = (
    lambda s: s,
    str.rstrip,
    str.strip,
)
#: A file this long and a whole-file block under half of it is a fragment.
FRAGMENT_MIN_LINES = 10
#: How many lines either side of a match show "the file's own indentation".
NEAR_LINES = 20

#: (remove, add): a change of leading whitespace, from the hunk's to the file's.
Shift = tuple[str, str]
#: difflib-style opcodes: (tag, i1, i2, j1, j2) over a hunk's old and new lines.
Opcode = tuple[str, int, int, int, int]
_SAME: Shift = ("", "")


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
    """A hunk at one place; `shift` None when nothing says how to indent its added lines."""

    start: int
    old: tuple[str, ...]
    new: tuple[str, ...]
    level: int
    ops: tuple[Opcode, ...] = ()
    shift: Shift | None = _SAME
    hint: int | None = None
    counted: bool = False
    anchor: str = ""


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


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _line_shift(have: str, want: str) -> Shift | None:
    """How one hunk line's indentation becomes the file line's (None: not by a prefix)."""
    h_ind, w_ind = _indent(have), _indent(want)
    if h_ind.startswith(w_ind):
        return ("", h_ind[len(w_ind) :])
    if w_ind.startswith(h_ind):
        return (w_ind[len(h_ind) :], "")
    return None


def _reindent(line: str, shift: Shift) -> str:
    remove, add = shift
    if remove and line.startswith(remove):
        line = line[len(remove) :]
    return add + line


def _opcodes(hunk: Hunk) -> tuple[Opcode, ...]:
    """Which old lines are kept and which replaced: the diff's own marks, else difflib's guess."""
    marks = hunk.marks
    if (
        marks
        and marks.count(" ") + marks.count("-") == len(hunk.old)
        and marks.count(" ") + marks.count("+") == len(hunk.new)
    ):
        ops = _marked_opcodes(marks)
        if all(hunk.old[i1:i2] == hunk.new[j1:j2] for tag, i1, i2, j1, j2 in ops if tag == "equal"):
            return ops
    matcher = difflib.SequenceMatcher(None, hunk.old, hunk.new, autojunk=False)
    return tuple(matcher.get_opcodes())


def _marked_opcodes(marks: str) -> tuple[Opcode, ...]:
    """Opcodes read off a unified diff's " ", "-", "+" marks."""
    ops: list[Opcode] = []
    i = j = 0
    k = 0
    while k < len(marks):
        if marks[k] == " ":
            ops.append(("equal", i, i + 1, j, j + 1))
            i, j, k = i + 1, j + 1, k + 1
            continue
        i0, j0 = i, j
        while k < len(marks) and marks[k] != " ":
            if marks[k] == "-":
                i += 1
            else:
                j += 1
            k += 1
        tag = "replace" if i > i0 and j > j0 else "delete" if i > i0 else "insert"
        ops.append((tag, i0, i, j0, j))
    return tuple(ops)


def _shift(
    lines: Sequence[str],
    lex: _FileLex,
    start: int,
    old: Sequence[str],
    new: Sequence[str],
    ops: Sequence[Opcode],
    level: int,
) -> Shift | None:
    """How to re-indent the added lines at this place; None when nothing decides.

    Below the strip level the file and the hunk agree on indentation. Otherwise
    the `-` lines decide when they agree on one shift. Else (context lines that
    drifted alone look just like a whole hunk that did) the file's own
    indentation where the added lines go chooses among the shifts the hunk's
    lines show, none included: of those that put the added block's outermost
    lines on levels the file's code uses near there (deeper lines may nest
    anew) and inside the blocks around them, the only one; among several, the
    one the lines around each run of added lines call for (`_neighbours_decide`).
    """
    added = [line for tag, _, _, j1, j2 in ops if tag != "equal" for line in new[j1:j2]]
    added = [line for line in added if line.strip()]
    if level < 2 or not added:
        return _SAME
    file_part = lines[start : start + len(old)]
    removed = {
        _line_shift(file_part[i], old[i])
        for tag, i1, i2, _, _ in ops
        if tag != "equal"
        for i in range(i1, i2)
        if old[i].strip()
    }
    if len(removed) == 1 and None not in removed:
        return next(iter(removed))
    shown = {_line_shift(h, w) for h, w in zip(file_part, old, strict=True) if w.strip()}
    candidates = [
        s
        for s in sorted({_SAME} | {s for s in shown if s is not None})
        if all(line.startswith(s[0]) for line in added)
    ]
    runs = _new_runs(file_part, new, ops, lex.at(start))
    code_added = [x for _, run in runs for x in run]
    if not code_added:
        return _in_comment(lex, start, file_part, new, ops, candidates)
    near = lex.code_indents(max(0, start - NEAR_LINES), start + len(old) + NEAR_LINES)
    fitting = [
        s for s in candidates if _outermost_fit(code_added, s, near) and _nests(lex, start, runs, s)
    ]
    if len(fitting) == 1:
        return fitting[0]
    return _neighbours_decide(lex, start, runs, fitting)


def _new_runs(
    file_part: Sequence[str], new: Sequence[str], ops: Sequence[Opcode], lexer: _Lexer
) -> list[tuple[Opcode, list[str]]]:
    """Each run of added lines with those of its lines that start in code (not inside a
    comment or string literal), and not blank."""
    out: list[tuple[Opcode, list[str]]] = []
    for op in ops:
        tag, i1, i2, j1, j2 = op
        if tag == "equal":
            for line in file_part[i1:i2]:
                lexer.feed(line)
            continue
        code = [line for line in new[j1:j2] if not lexer.feed(line) and line.strip()]
        if code:
            out.append((op, code))
    return out


_PROSE = re.compile(r"\s*[A-Za-z@\[]")


def _in_comment(
    lex: _FileLex,
    start: int,
    file_part: Sequence[str],
    new: Sequence[str],
    ops: Sequence[Opcode],
    candidates: Sequence[Shift],
) -> Shift | None:
    """For added lines that are all comment text: the shift that aligns each run with the
    comment line before it, when both are prose (not list items, code blocks or the
    comment's opening line), and every run agrees; None otherwise (string literals too:
    their whitespace is their content)."""
    lexer = lex.at(start)
    decided: set[Shift] = set()
    for tag, i1, i2, j1, j2 in ops:
        if tag == "equal":
            for line in file_part[i1:i2]:
                lexer.feed(line)
            continue
        run: list[str] = []
        for line in new[j1:j2]:
            in_comment = lexer.depth > 0 and not lexer.string and lexer.quote is None
            lexer.feed(line)
            if line.strip():
                if not in_comment:
                    return None
                run.append(line)
        if not run:
            continue
        outer = _outermost(run)
        k = start + i1 - 1
        while k >= 0 and not lex.lines[k].strip():
            k -= 1
        if k < 0 or not _PROSE.match(lex.lines[k]) or not all(_PROSE.match(x) for x in outer):
            return None
        state = _Lexer(lex.states[k])
        if not (state.depth > 0 and not state.string and state.quote is None):
            return None
        level = _indent(lex.lines[k])
        fit = [s for s in candidates if all(_indent(_reindent(x, s)) == level for x in outer)]
        if len(fit) != 1:
            return None
        decided.add(fit[0])
    return next(iter(decided)) if len(decided) == 1 else None


def _outermost(code: Sequence[str]) -> list[str]:
    """The lines of a block at its shallowest indentation."""
    outer = min(len(_indent(x)) for x in code)
    return [x for x in code if len(_indent(x)) == outer]


def _outermost_fit(code: Sequence[str], shift: Shift, near: set[str]) -> bool:
    """Re-indented by `shift`, the added block's outermost code lines take a level the
    file's code uses near there. Deeper lines say nothing: new code may nest anew."""
    return all(_indent(_reindent(x, shift)) in near for x in _outermost(code))


#: Words that start an item or a case: lines starting alike are siblings, one level.
_SIBLING_HEADS = frozenset(
    {"let", "and", "val", "type", "module", "external", "exception", "include", "open", "|"}
)
#: Line endings that open a block (the next line is deeper) and line starts that close one.
_OPENS = re.compile(r"(\b(begin|struct|sig|object|do|then|else|try)|=|\(|\[\|?|\{)\s*$")
_CLOSES = re.compile(r"^\s*(end\b|done\b|\)|\]|\|\]|\})")
_HEAD = re.compile(r"\s*([\w'.]+|\S)")


def _head(line: str) -> str:
    m = _HEAD.match(line)
    return m.group(1) if m else ""


def _nests(
    lex: _FileLex, start: int, runs: Sequence[tuple[Opcode, list[str]]], shift: Shift
) -> bool:
    """Re-indented by `shift`, each run of added lines is deeper than the code line before
    it when that line opens a block (`begin`, `=`, `->`, `(`...), and deeper than the
    one after it when that one closes a block (`end`, `)`, `]`...)."""
    for (_, i1, i2, _, _), code in runs:
        outer = len(_indent(_reindent(_outermost(code)[0], shift)))
        before = lex.code_line_before(start + i1)
        after = lex.code_line_after(start + i2)
        if before is not None and _OPENS.search(before) and outer <= len(_indent(before)):
            return False
        if after is not None and _CLOSES.match(after) and outer <= len(_indent(after)):
            return False
    return True


def _sibling_at(lex: _FileLex, k: int, step: int, level: str, head: str) -> bool:
    """Whether, going from line k by `step` over code lines deeper than `level`, the first
    code line that is not deeper sits at `level` and starts with `head` (opening no block)."""
    i = k - 1 if step < 0 else k
    width = len(level)
    while 0 <= i < len(lex.lines):
        line = lex.lines[i]
        if line.strip() and not _Lexer(lex.states[i]).inside and len(_indent(line)) <= width:
            return _indent(line) == level and _head(line) == head and not _OPENS.search(line)
        i += step
    return False


def _neighbours_decide(
    lex: _FileLex, start: int, runs: Sequence[tuple[Opcode, list[str]]], candidates: Sequence[Shift]
) -> Shift | None:
    """The shift the file's lines around each run of added lines call for, if one.

    "The file's own indentation where the added lines go": a run whose outermost
    line starts like the code line before or after it (`let`, `val`, `|`...)
    is that line's sibling, at its level; so is it, at a candidate level, of
    the first line not deeper than that level, before or after it, if that one
    sits at the level and starts alike; a run between two code lines of one
    level (the first not opening a block, the second not closing one) is at
    that level. Every run that says something must say one level, every such
    level must call for one candidate shift, and all runs for the same one;
    else nothing decides.
    """
    decided: set[Shift] = set()
    for (_, i1, i2, _, _), code in runs:
        outer = _outermost(code)
        before = lex.code_line_before(start + i1)
        after = lex.code_line_after(start + i2)
        levels: set[str] = set()
        head = _head(outer[0])
        if head in _SIBLING_HEADS and all(_head(x) == head for x in outer):
            levels |= {_indent(x) for x in (before, after) if x is not None and _head(x) == head}
        if (
            before is not None
            and after is not None
            and _indent(before) == _indent(after)
            and not _OPENS.search(before)
            and not _CLOSES.match(after)
        ):
            levels.add(_indent(before))
        for s in candidates:
            level = _indent(_reindent(outer[0], s))
            if _sibling_at(lex, start + i1, -1, level, head) or _sibling_at(
                lex, start + i2, 1, level, head
            ):
                levels.add(level)
        if len(levels) > 1:
            return None
        if not levels:
            continue
        level = next(iter(levels))
        fit = [s for s in candidates if all(_indent(_reindent(x, s)) == level for x in outer)]
        if len(fit) != 1:
            return None
        decided.add(fit[0])
    return next(iter(decided)) if len(decided) == 1 else None


_LEXEME = re.compile(r"""\\.|"|\(\*|\*\)|\{([a-z_]*)\||\|([a-z_]*)\}|'(?:\\.|[^\\'])'""")


class _Lexer:
    """Just enough of OCaml's lexer to tell whether a line starts inside a comment or string."""

    def __init__(self, state: tuple[int, bool, str | None] = (0, False, None)) -> None:
        self.depth, self.string, self.quote = state

    @property
    def state(self) -> tuple[int, bool, str | None]:
        return self.depth, self.string, self.quote

    @property
    def inside(self) -> bool:
        return self.depth > 0 or self.string or self.quote is not None

    def feed(self, line: str) -> bool:
        """Whether `line` starts inside a comment or a string literal; then read it."""
        inside = self.inside
        for m in _LEXEME.finditer(line):
            token = m.group(0)
            if self.quote is not None:
                if m.group(2) == self.quote:
                    self.quote = None
            elif self.string:
                self.string = token != '"'
            elif token == '"':
                self.string = True
            elif token == "(*":
                self.depth += 1
            elif token == "*)":
                self.depth = max(0, self.depth - 1)
            elif m.group(1) is not None:
                self.quote = m.group(1)
        return inside


class _FileLex:
    """The lexer's state before each line of a file, read once and only when asked."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = lines
        self._states: list[tuple[int, bool, str | None]] | None = None

    @property
    def states(self) -> list[tuple[int, bool, str | None]]:
        if self._states is None:
            lexer = _Lexer()
            self._states = []
            for line in self.lines:
                self._states.append(lexer.state)
                lexer.feed(line)
            self._states.append(lexer.state)
        return self._states

    def at(self, k: int) -> _Lexer:
        """A lexer as it stands before line k."""
        return _Lexer(self.states[k])

    def code_line_before(self, k: int) -> str | None:
        """The nearest non-blank line before line k that starts and ends in code."""
        for i in range(k - 1, -1, -1):
            if self._code(i):
                return self.lines[i]
        return None

    def code_line_after(self, k: int) -> str | None:
        """The nearest non-blank line at or after line k that starts and ends in code."""
        for i in range(k, len(self.lines)):
            if self._code(i):
                return self.lines[i]
        return None

    def _code(self, i: int) -> bool:
        """A line of code: not blank, not inside a comment or string, not opening one
        that goes on (`(*$=`, `{|`: its end is no block opener)."""
        states = self.states
        return (
            bool(self.lines[i].strip())
            and not _Lexer(states[i]).inside
            and not _Lexer(states[i + 1]).inside
        )

    def code_indents(self, first: int, end: int) -> set[str]:
        """Indentations of the lines in [first, end) that start in code.

        Comment bodies and string literals are aligned to what opened them, not to
        the code's levels: they say nothing about how the file indents code.
        """
        states = self.states
        return {
            _indent(line)
            for k, line in enumerate(self.lines[first:end], first)
            if line.strip() and not _Lexer(states[k]).inside
        }


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
        hunk.marks,
        hunk.counted,
        hunk.anchor,
    )


def _trim_blank(hunk: Hunk) -> Hunk | None:
    """The hunk without its leading and trailing blank old lines (its hint moved along)."""
    old, new = list(hunk.old), list(hunk.new)
    changed = False
    lead = 0
    while old and not old[0].strip():
        old.pop(0)
        lead += 1
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
    hint = None if hunk.line_hint is None else hunk.line_hint + lead
    # the side the context is short on stays short: the anchor holds if the other side lost
    # nothing
    trail = len(hunk.old) - lead - len(old)
    anchor = hunk.anchor if (lead, trail)[hunk.anchor == "start"] == 0 else ""
    return Hunk(tuple(old), tuple(new), hint, counted=hunk.counted, anchor=anchor)


def _locate(lines: list[str], hunk: Hunk, lex: _FileLex | None = None) -> tuple[list[_Placed], int]:
    """Matches at the first cascade level that has any; (matches, level)."""
    lex = lex or _FileLex(lines)
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
                return [_place(lines, lex, i, candidate, level) for i in found], level
    return [], -1


def _place(lines: list[str], lex: _FileLex, start: int, hunk: Hunk, level: int) -> _Placed:
    ops = _opcodes(hunk)
    shift = _shift(lines, lex, start, hunk.old, hunk.new, ops, level)
    return _Placed(
        start, hunk.old, hunk.new, level, ops, shift, hunk.line_hint, hunk.counted, hunk.anchor
    )


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
    shift = placed.shift or _SAME
    out: list[str] = []
    for tag, i1, i2, j1, j2 in placed.ops:
        if tag == "equal":
            out.extend(file_part[i1:i2])
            continue
        out.extend(_reindent(x, shift) if x.strip() else x for x in placed.new[j1:j2])
    return out


def _resolve(
    lines: list[str], hunks: Sequence[Hunk]
) -> tuple[list[_Placed | None], list[HunkFailure]]:
    """Place every hunk in `lines` (the original text); equal matches settled by the header."""
    lex = _FileLex(lines)
    found = [_locate(lines, h, lex)[0] for h in hunks]
    drifts = {f[0].start - f[0].hint for f in found if len(f) == 1 and f[0].hint is not None}
    twins = _twins(found)
    placed: list[_Placed | None] = []
    failures: list[HunkFailure] = []
    total = len(hunks)
    for k, (hunk, options) in enumerate(zip(hunks, found, strict=True)):
        name = f"hunk {k + 1} of {total}"
        if k in twins:  # before the headers: drifted, two of them may name one place
            chosen = [twins[k]]
        else:
            chosen = options if len(options) == 1 else _settled(options, drifts, len(lines))
        placed.append(chosen[0] if len(chosen) == 1 and chosen[0].shift is not None else None)
        if not options:
            failures.append(
                HunkFailure(k, f"{name}: its lines were not found", _closest(lines, hunk.old))
            )
        elif len(chosen) != 1:
            where = ", ".join(str(p.start + 1) for p in options[:5])
            failures.append(
                HunkFailure(
                    k,
                    f"{name} matches {len(options)} places (lines {where}); "
                    "include more context lines",
                )
            )
        elif chosen[0].shift is None:
            failures.append(_undecided(k, name, lines, chosen[0]))
    return placed, failures


def _twins(found: Sequence[Sequence[_Placed]]) -> dict[int, _Placed]:
    """Identical hunks that match the same places, as many as there are: one each, in order.

    Which copy goes where cannot change the result (the same change at every
    place), so this settles nothing by guessing.
    """
    groups: dict[tuple[object, ...], list[int]] = {}
    for k, options in enumerate(found):
        if len(options) > 1:
            first = options[0]
            key = (first.old, first.new, tuple(p.start for p in options))
            groups.setdefault(key, []).append(k)
    out: dict[int, _Placed] = {}
    for ks in groups.values():
        if len(ks) == len(found[ks[0]]):
            out.update(zip(ks, found[ks[0]], strict=True))
    return out


def _settled(options: Sequence[_Placed], drifts: set[int], total: int) -> list[_Placed]:
    """The one of several equal matches the header's line or the file's end calls for.

    Both must agree when both speak; otherwise none (refused).
    """
    by_header = _at_header(options, drifts)
    by_edge = _at_edge(options, total)
    if len(by_header) == 1 and len(by_edge) == 1 and by_header != by_edge:
        return []
    return by_header if len(by_header) == 1 else by_edge


def _at_edge(options: Sequence[_Placed], total: int) -> list[_Placed]:
    """The equal match at the end of the file its context calls for ("anchor")."""
    anchor = options[0].anchor if options else ""
    if anchor == "end":
        return [p for p in options if p.start + len(p.old) == total]
    if anchor == "start" and options[0].hint in (None, 0):
        return [p for p in options if p.start == 0]
    return []


def _at_header(options: Sequence[_Placed], drifts: set[int]) -> list[_Placed]:
    """The equal matches at the header's line, moved by the drift the other hunks agree on.

    Without a header line, or when the other hunks disagree, none: ambiguity is
    refused. Alone in its file, a header counts only if its line counts agree
    with its body: numbers written from memory land on an equal match by chance
    (a `;;` every few lines), numbers computed from the file do not miscount.
    """
    hint = options[0].hint if options else None
    if hint is None or len(drifts) > 1 or (not drifts and not options[0].counted):
        return []
    expected = hint + next(iter(drifts), 0)
    return [p for p in options if p.start == expected]


def _undecided(k: int, name: str, lines: list[str], placed: _Placed) -> HunkFailure:
    """Why a hunk found by content was still refused: its added lines' indentation."""
    first, last = placed.start + 1, placed.start + len(placed.old)
    shown = "\n".join(lines[placed.start : placed.start + len(placed.old)])
    return HunkFailure(
        k,
        f"{name}: its lines are indented differently from the file's (lines {first}-{last}), "
        "and neither its `-` lines nor the file's indentation there tell how to indent the "
        "lines it adds; copy the lines exactly as the file has them",
        f"the file's lines {first}-{last}:\n{shown}",
    )


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
        if len(found) != 1 or found[0].shift is None:
            return None
        current = _splice(current, found)
    return current.text()


def _new_file(text: str) -> str:
    """A new file's text without the indentation all its lines share.

    A source file's top-level items start at column 0: when every line of a new
    file is indented, the indentation came from quoting, not from the file.
    """
    lines = _Lines.of(text)
    indents = [_indent(x) for x in lines.content if x.strip()]
    common = indents[0] if indents else ""
    for indent in indents[1:]:
        while not indent.startswith(common):
            common = common[:-1]
    if not common:
        return text
    content = [x[len(common) :] if x.startswith(common) else x.lstrip() for x in lines.content]
    return _Lines(content, lines.ends, lines.eol).text()


def apply_file_edit(text: str | None, edit: FileEdit) -> FileApplyResult:
    """One file's edit against its current text (None: the file does not exist)."""
    if text is not None and quotes_shown_bytes(edit) and has_raw_bytes(text):
        return apply_as_shown(text, edit.path or "the file", lambda t: _apply_file_edit(t, edit))
    return _apply_file_edit(text, edit)


def _apply_file_edit(text: str | None, edit: FileEdit) -> FileApplyResult:
    name = edit.path or "the file"
    if edit.content is not None:
        if text is None:
            return FileApplyResult(_new_file(edit.content))
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
            return FileApplyResult(_new_file("\n".join(body) + "\n" if body else ""))
        return FileApplyResult(None, (HunkFailure(0, f"{name} was not found"),))
    if not edit.hunks:
        return FileApplyResult(None, (HunkFailure(0, f"no change given for {name}"),))
    return apply_hunks(text, edit.hunks)
