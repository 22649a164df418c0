"""What the model is shown for one request.

At this stage: the current file with line numbers (a window around the target
when the file is long), the target item (found with tree-sitter), and the
other half of the module (`.mli` for an `.ml`, and the reverse).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..positions import EOL_STR, encode
from ..workspace import FileText, Workspace
from .items import Item, enclosing_item
from .parsing import SourceKind, parse

#: Lines of the current file shown on each side of the target when the file is long.
WINDOW_MARGIN = 200


@dataclass(frozen=True)
class Excerpt:
    """Lines `first_line`..`first_line + len(lines) - 1` (1-based) of a file."""

    rel: str
    role: str
    lines: tuple[str, ...]
    first_line: int = 1
    total_lines: int = 0
    numbered: bool = True

    @property
    def last_line(self) -> int:
        return self.first_line + len(self.lines) - 1


@dataclass(frozen=True)
class Target:
    """The item the instruction is about (1-based, inclusive lines)."""

    rel: str
    start_line: int
    end_line: int
    kind: str
    name: str | None
    text: str


@dataclass(frozen=True)
class Context:
    rel: str
    target: Target | None
    excerpts: tuple[Excerpt, ...]

    @property
    def files(self) -> tuple[str, ...]:
        """Relative paths of every file shown, so a bare name can be resolved."""
        return tuple(dict.fromkeys(e.rel for e in self.excerpts))


def split_lines(text: str) -> list[str]:
    """Lines without terminators; a final newline does not make an extra line."""
    lines = EOL_STR.split(text)
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return lines


def sibling(path: Path) -> Path | None:
    """The other half of a module: `foo.mli` for `foo.ml` and the reverse."""
    kind = SourceKind.of(path)
    if kind is SourceKind.IMPLEMENTATION:
        return path.with_suffix(".mli")
    if kind is SourceKind.INTERFACE:
        return path.with_suffix(".ml")
    return None


def find_target(rel: str, text: str, start: int, end: int) -> Target | None:
    """The item around the UTF-8 byte range [start, end] of `text`."""
    kind = SourceKind.of(rel)
    if kind is None:
        return None
    item: Item | None = enclosing_item(parse(encode(text), kind), start, end)
    if item is None:
        return None
    lines = split_lines(text)[item.start_line : item.end_line + 1]
    return Target(
        rel, item.start_line + 1, item.end_line + 1, item.kind, item.name, "\n".join(lines)
    )


def build_context(
    ws: Workspace,
    current: FileText,
    text: str,
    selection: tuple[int, int] | None,
    max_file_lines: int,
) -> Context:
    """The slice for a request on `current` whose text (maybe cleaned) is `text`.

    `selection` holds UTF-8 byte offsets into `text`; None means the whole file.
    """
    target = find_target(current.rel, text, *selection) if selection else None
    lines = split_lines(text)
    first = 0
    shown = lines
    if len(lines) > max_file_lines:
        centre = (target.start_line - 1) if target else 0
        last_needed = (target.end_line - 1) if target else 0
        first = max(0, centre - WINDOW_MARGIN)
        last = min(len(lines), max(last_needed + 1 + WINDOW_MARGIN, first + max_file_lines))
        shown = lines[first:last]
    excerpts = [Excerpt(current.rel, "the file being edited", tuple(shown), first + 1, len(lines))]
    other_path = sibling(current.path)
    other = ws.read(other_path) if other_path else None
    if other is not None:
        other_lines = split_lines(other.text)
        role = (
            "the interface of the same module"
            if other_path and other_path.suffix == ".mli"
            else "the implementation of the same module"
        )
        excerpts.append(
            Excerpt(
                other.rel,
                role,
                tuple(other_lines[:max_file_lines]),
                1,
                len(other_lines),
            )
        )
    return Context(current.rel, target, tuple(excerpts))
