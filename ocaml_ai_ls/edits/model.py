"""Plain data that flows from the edit parser to the applier.

A model's answer becomes a tuple of `FileEdit`s; each holds either hunks located
by content (from unified diffs and SEARCH/REPLACE blocks) or a whole new text
(from whole-file blocks and `--- /dev/null` diffs).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Hunk:
    """Replace the lines `old` (found in the file by content) with `new`.

    Lines carry no line terminator. `line_hint` is the 0-based line where the
    model claimed `old` starts (an `@@` header); it only chooses between equal
    matches. `marks` is a unified diff's own pairing of the lines, one of " ",
    "-", "+" per body line in order ("" for SEARCH/REPLACE): a `-x`/`+x` pair is
    a change (say of trailing whitespace), not a kept line, and only the `-`
    lines may say how the `+` lines are indented. `counted` is true when the
    header's line counts agree with the body: a header computed from a file,
    whose line number alone may settle equal matches. `anchor` is "start" or
    "end" when the context says the hunk sits at that end of the file (fewer
    context lines on that side than on the other), else "".
    """

    old: tuple[str, ...]
    new: tuple[str, ...]
    line_hint: int | None = None
    marks: str = field(default="", compare=False)
    counted: bool = field(default=False, compare=False)
    anchor: str = field(default="", compare=False)


@dataclass(frozen=True)
class FileEdit:
    """What the model wants done to one file.

    `path` is as the model wrote it, with `a/` `b/` prefixes and quotes removed;
    an empty path means "the file the request is about". `content` is set for a
    whole new text (a new file, or a whole-file block); `hunks` otherwise.
    """

    path: str
    hunks: tuple[Hunk, ...] = ()
    content: str | None = None
    create: bool = False


@dataclass(frozen=True)
class ParseResult:
    """The usable edits in a model's answer and why the rest was not usable."""

    edits: tuple[FileEdit, ...] = ()
    problems: tuple[str, ...] = field(default=())

    @property
    def usable(self) -> bool:
        return bool(self.edits)

    @property
    def reason(self) -> str:
        """One line explaining why nothing was usable (empty when something was)."""
        if self.edits:
            return ""
        if self.problems:
            return "; ".join(self.problems)
        return "no edit found in the answer (expected SEARCH/REPLACE blocks or a unified diff)"


@dataclass(frozen=True)
class HunkFailure:
    """Why one hunk could not be placed, with a hint for a repair round."""

    index: int
    reason: str
    closest: str | None = None


@dataclass(frozen=True)
class FileApplyResult:
    """The new text of a file when every hunk applied, else the failures."""

    text: str | None
    failures: tuple[HunkFailure, ...] = ()
    applied: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return self.text is not None
