"""dune files: which library or executable a module belongs to, and what it sees.

Only what module naming needs is read: `library` (name, public_name,
wrapped, libraries, modules), `executable(s)` and `test(s)` (names,
libraries, modules) and `include_subdirs`. A file that does not parse gives
no stanzas and a log line; the index then falls back to plain module names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SList:
    """A parenthesised list and the (0-based) lines it spans."""

    items: tuple[str | SList, ...]
    start_line: int
    end_line: int


class DuneSyntaxError(ValueError):
    pass


def _tokens(text: str) -> Iterator[tuple[str, int, bool]]:
    """(token, 0-based line, quoted) for `(`, `)`, atoms and strings; comments skipped."""
    i, line, n = 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch in " \t\r":
            i += 1
        elif ch == ";":
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("#;", i):
            yield "#;", line, False
            i += 2
        elif text.startswith("#|", i):
            end = text.find("|#", i + 2)
            if end < 0:
                raise DuneSyntaxError(f"line {line + 1}: unterminated #| comment")
            line += text.count("\n", i, end)
            i = end + 2
        elif ch in "()":
            yield ch, line, False
            i += 1
        elif ch == '"':
            j, out = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                if text[j] == "\n":
                    line += 1
                out.append(text[j])
                j += 1
            if j >= n:
                raise DuneSyntaxError(f"line {line + 1}: unterminated string")
            yield "".join(out), line, True
            i = j + 1
        else:
            j = i
            while j < n and text[j] not in ' \t\r\n()";':
                j += 1
            yield text[i:j], line, False
            i = j


def parse_sexps(text: str) -> list[str | SList]:
    """The top-level s-expressions of a dune file; `#;` datum comments dropped."""
    stack: list[tuple[list[str | SList], int]] = [([], 0)]
    skip_next = [False]
    for token, line, quoted in _tokens(text):
        if token == "(" and not quoted:
            stack.append(([], line))
            skip_next.append(False)
        elif token == ")" and not quoted:
            if len(stack) == 1:
                raise DuneSyntaxError(f"line {line + 1}: unbalanced `)`")
            items, start = stack.pop()
            skip_next.pop()
            _push(stack, skip_next, SList(tuple(items), start, line))
        elif token == "#;" and not quoted:
            skip_next[-1] = True
        else:
            _push(stack, skip_next, token)
    if len(stack) != 1:
        raise DuneSyntaxError("unbalanced `(`")
    return stack[0][0]


def _push(stack: list[tuple[list[str | SList], int]], skip: list[bool], item: str | SList) -> None:
    if skip[-1]:
        skip[-1] = False
        return
    stack[-1][0].append(item)


@dataclass(frozen=True)
class Stanza:
    """A library, executable(s) or test(s) in the dune file of `dir` (relative, posix)."""

    kind: str
    dir: str
    names: tuple[str, ...]
    public_name: str | None
    wrapped: bool
    libraries: tuple[str, ...]
    #: Module names listed in `(modules ...)`, None for "every module of the dir".
    modules: frozenset[str] | None
    start_line: int
    end_line: int

    @property
    def name(self) -> str:
        return self.names[0] if self.names else ""

    @property
    def is_library(self) -> bool:
        return self.kind == "library"

    @property
    def wrapper(self) -> str:
        """The module a wrapped library's modules live in: `(name geo)` is `Geo`."""
        return module_name(self.name)


def module_name(stem: str) -> str:
    """OCaml's module name for a file stem or library name: `foo_bar` is `Foo_bar`."""
    return stem[:1].upper() + stem[1:]


def _field(stanza: SList, key: str) -> tuple[str | SList, ...] | None:
    for item in stanza.items[1:]:
        if isinstance(item, SList) and item.items and item.items[0] == key:
            return item.items[1:]
    return None


def _atoms(items: tuple[str | SList, ...] | None) -> tuple[str, ...]:
    if not items:
        return ()
    out: list[str] = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif item.items and item.items[0] == "re_export":
            out.extend(a for a in item.items[1:] if isinstance(a, str))
        elif item.items and item.items[0] == "select":
            continue  # optional dependencies chosen at build time
    return tuple(a for a in out if not a.startswith((":", "%", "\\")))


_STANZAS = {"library", "executable", "executables", "test", "tests"}


@dataclass(frozen=True)
class DuneFile:
    dir: str
    stanzas: tuple[Stanza, ...]
    #: `(include_subdirs unqualified)`: modules of subdirectories belong here.
    include_subdirs: bool


def read_dune(dir: str, text: str) -> DuneFile:
    """The stanzas of one dune file; raises DuneSyntaxError when it does not parse."""
    stanzas: list[Stanza] = []
    include_subdirs = False
    for sexp in parse_sexps(text):
        if not isinstance(sexp, SList) or not sexp.items or not isinstance(sexp.items[0], str):
            continue
        head = sexp.items[0]
        if head == "include_subdirs":
            include_subdirs = len(sexp.items) > 1 and sexp.items[1] != "no"
            continue
        if head not in _STANZAS:
            continue
        names = _atoms(_field(sexp, "names") or _field(sexp, "name"))
        public = _atoms(_field(sexp, "public_name"))
        wrapped_field = _atoms(_field(sexp, "wrapped"))
        modules_field = _field(sexp, "modules")
        modules: frozenset[str] | None = None
        if modules_field is not None and all(isinstance(m, str) for m in modules_field):
            listed = _atoms(modules_field)
            if len(listed) == len(modules_field):  # no :standard or set operations
                modules = frozenset(module_name(m) for m in listed)
        stanzas.append(
            Stanza(
                kind="library"
                if head == "library"
                else ("test" if "test" in head else "executable"),
                dir=dir,
                names=names,
                public_name=public[0] if public else None,
                wrapped=not wrapped_field or wrapped_field[0] != "false",
                libraries=_atoms(_field(sexp, "libraries")),
                modules=modules,
                start_line=sexp.start_line,
                end_line=sexp.end_line,
            )
        )
    return DuneFile(dir, tuple(stanzas), include_subdirs)
