"""Name resolution the way OCaml and dune do it, far enough to find definitions.

A use at a place in a file is looked up in: the opens inside the item
(`let open`, `M.(...)`), then the file's own definitions and opens before
that place, latest first (so a later `open B` shadows an earlier `open A`),
then the compilation units the file's dune stanza sees: its own library's
modules unqualified, each dependency's wrapper module (`Geo` for
`(library (name geo))`) or, for `(wrapped false)`, its modules. Module paths
go through aliases (`module G = Geo`), functor applications (to the
functor's result signature), nested modules and `include`. Types and
type-directed uses (unqualified constructors and fields) that no scope
explains fall back to a workspace-wide lookup by name when it is unambiguous
enough. The stdlib and opam libraries are not in the index: their names
resolve to nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from .dune import Stanza
from .index import ModuleUnit, SourceFile, WorkspaceIndex
from .summary import MATCHES, Definition, DefKind, FileSummary, Import, RefKind

_T = TypeVar("_T")
_MODULE_KINDS = MATCHES[RefKind.MODULE]
_MODULE_TYPE_KINDS = MATCHES[RefKind.MODULE_TYPE]
#: Bounds that keep pathological inputs (alias cycles, include chains) cheap.
MAX_DEPTH = 8
#: A name-only fallback that finds more definitions than this is too vague to use.
MAX_FALLBACK = 3


@dataclass(frozen=True)
class Found:
    """A definition and the file it is in."""

    file: SourceFile
    definition: Definition


@dataclass(frozen=True)
class UnitScope:
    """A module: the definitions at `scope` in a compilation unit's files."""

    unit: ModuleUnit
    scope: tuple[str, ...] = ()


@dataclass(frozen=True)
class Wrapper:
    """The module a wrapped dune library puts its modules in."""

    library: Stanza


Module = UnitScope | Wrapper


@dataclass(frozen=True)
class Location:
    """Where a use is: a file (maybe a buffer's fresher summary), a line, and what
    the expression around it adds: local opens and `let module`s, innermost last."""

    file: SourceFile
    line: int
    scope: tuple[str, ...] = ()
    local_opens: tuple[tuple[str, ...], ...] = ()
    local_modules: tuple[Definition, ...] = ()


_MODULE_SCOPES = frozenset({DefKind.MODULE, DefKind.FUNCTOR, DefKind.MODULE_TYPE})


def scope_at(summary: FileSummary, line: int) -> tuple[str, ...]:
    """The module path inside the file at a 0-based line."""
    best: tuple[str, ...] = ()
    for d in summary.definitions:
        if d.kind in _MODULE_SCOPES and d.sig_end_line < line <= d.end_line:
            scope = (*d.scope, d.name)
            if len(scope) > len(best):
                best = scope
    return best


def location(source: SourceFile, summary: FileSummary, line: int) -> Location:
    """Where a use at `line` is, with the local opens and modules of its item before it."""
    chunk = summary.chunk_at(line)
    opens: tuple[tuple[str, ...], ...] = ()
    modules: tuple[Definition, ...] = ()
    if chunk is not None:
        opens = tuple(
            i.path
            for i in summary.imports
            if i.local and not i.include and chunk.start_line <= i.line <= line <= i.end_line
        )
        modules = tuple(d for d in summary.local_modules if d.line <= line <= d.end_line)
    return Location(source, line, scope_at(summary, line), opens, modules)


@dataclass
class Resolver:
    """Answers for one request: results are remembered (the index does not change
    under a request), which keeps projects whose modules open and include each
    other (`open! Import` everywhere) from being walked again for every name."""

    index: WorkspaceIndex
    _memo: dict[tuple[object, ...], list[Found]] = field(default_factory=dict)
    _modules: dict[tuple[object, ...], list[Module]] = field(default_factory=dict)
    _members: dict[tuple[object, ...], list[Found]] = field(default_factory=dict)

    # -- entry points ---------------------------------------------------------

    def resolve(self, path: Sequence[str], kind: RefKind, loc: Location) -> list[Found]:
        """The definitions a use of `path` (of `kind`) at `loc` means."""
        key = (tuple(path), kind, loc)
        memo = self._memo.get(key)
        if memo is not None:
            return memo
        kinds = MATCHES[kind]
        found = self._defs(path, kinds, loc, 0)
        typed = kind in (RefKind.CONSTRUCTOR, RefKind.FIELD, RefKind.TYPE)
        if not found and len(path) == 1 and typed:
            found = self.by_name(path[0], kinds)
        found = _unique(found)
        self._memo[key] = found
        return found

    def module(self, path: Sequence[str], loc: Location, depth: int) -> list[Module]:
        """The modules a module path means at `loc`."""
        if depth > MAX_DEPTH or not path:
            return []
        key = (tuple(path), loc)
        memo = self._modules.get(key)
        if memo is None:
            memo = self._modules[key] = self._module(path, loc, depth)
        return memo

    def _module(self, path: Sequence[str], loc: Location, depth: int) -> list[Module]:
        found: list[Module] = []
        for f in self.in_scope(path[0], _MODULE_KINDS, loc, depth):
            found.extend(self.module_of(f, depth + 1))
        if not found:
            found = self.units_visible(path[0], loc.file)
        for name in path[1:]:
            found = [
                m
                for outer in found
                for f in self.member(outer, name, _MODULE_KINDS, depth + 1)
                for m in self.module_of(f, depth + 1)
            ] + [m for outer in found for m in self._wrapped_units(outer, name)]
        return _unique(found)

    def module_definitions(self, path: Sequence[str], loc: Location, depth: int = 0) -> list[Found]:
        """The module definitions a module path goes through: `IS` in `IS.add`, then
        what `module IS = Int_store` names, and `module Int_store = Kv.Make (Int_key)`,
        the functor and its arguments, so the model sees how the module was made."""
        out: list[Found] = []
        if depth > MAX_DEPTH:
            return out
        for k in range(1, len(path) + 1):
            for f in self._defs(path[:k], _MODULE_KINDS, loc, depth):
                out.append(f)
                d = f.definition
                at = Location(f.file, d.line, d.scope)
                for inner in (d.body, *d.args) if d.body is not None else ():
                    out.extend(self.module_definitions(inner, at, depth + 1))
        return _unique(out)

    # -- scopes ---------------------------------------------------------------

    def in_scope(
        self, name: str, kinds: frozenset[DefKind], loc: Location, depth: int
    ) -> list[Found]:
        """Definitions named `name` visible at `loc`, latest binding first."""
        outer = Location(loc.file, loc.line, loc.scope)
        if kinds & _MODULE_KINDS:
            for d in reversed(loc.local_modules):
                if d.name == name:
                    return [Found(loc.file, d)]
        for opened in reversed(loc.local_opens):
            found = [
                f
                for m in self.module(opened, outer, depth + 1)
                for f in self.member(m, name, kinds, depth + 1)
            ]
            if found:
                return found
        summary = loc.file.summary
        if summary is None:
            return []
        events: list[tuple[int, int, Definition | Import]] = []
        group = summary.chunk_at(loc.line)  # `let rec f … and g …` see each other
        for d in summary.defined(name):
            if (
                d.kind in kinds
                and (
                    d.end_line < loc.line
                    or (
                        d.recursive
                        and group is not None
                        and group.start_line <= d.line <= group.end_line
                    )
                )
                and _visible(d.scope, loc.scope)
            ):
                events.append((d.start_line, 1, d))
        for imp in summary.imports:
            if not imp.local and imp.line < loc.line and _visible(imp.scope, loc.scope):
                events.append((imp.line, 0, imp))
        events.sort(key=lambda e: (e[0], e[1]))
        for _, _, event in reversed(events):
            if isinstance(event, Definition):
                return [Found(loc.file, event)]
            before = Location(loc.file, event.line, loc.scope)
            found = [
                f
                for m in self.module(event.path, before, depth + 1)
                for f in self.member(m, name, kinds, depth + 1)
            ]
            if found:
                return found
        return []

    def units_visible(self, name: str, file: SourceFile) -> list[Module]:
        """Compilation units and library wrappers named `name` that `file` can see."""
        own = self.index.unit_of(file.path)
        stanza = own.stanza if own is not None else None
        found: list[Module] = []
        named = [u for u in self.index.units_named(name) if u is not own]
        if stanza is None and own is not None:
            # no dune stanza (an old jbuild, a plain directory): the compiler's include
            # path starts with the file's own directory
            named = [u for u in named if u.dir == own.dir] or named
        for unit in named:
            if stanza is None or unit.stanza == stanza:
                found.append(UnitScope(unit))
        if stanza is not None:
            for lib in self.dependencies(stanza):
                if lib.wrapped and lib.wrapper == name:
                    found.append(Wrapper(lib))
                elif not lib.wrapped:
                    found.extend(
                        UnitScope(u) for u in self.index.units_named(name) if u.stanza == lib
                    )
        if not found:  # undeclared dependency or unreadable dune file: any unit of that name
            found = [UnitScope(u) for u in self.index.units_named(name) if u is not own]
            found.extend(
                Wrapper(lib)
                for lib in set(self.index.tables.libraries.values())
                if lib.wrapped and lib.wrapper == name
            )
        return _unique(found)

    def dependencies(self, stanza: Stanza) -> list[Stanza]:
        """Libraries of the workspace a stanza sees, transitively (dune's default)."""
        seen: list[Stanza] = []
        queue = list(stanza.libraries)
        while queue:
            lib = self.index.library(queue.pop(0))
            if lib is None or lib in seen or lib == stanza:
                continue
            seen.append(lib)
            queue.extend(lib.libraries)
        return seen

    # -- members --------------------------------------------------------------

    def member(
        self, module: Module, name: str, kinds: frozenset[DefKind], depth: int
    ) -> list[Found]:
        """Definitions named `name` in a module (interface first, then `include`s)."""
        if depth > MAX_DEPTH:
            return []
        key = (module, name, kinds)
        memo = self._members.get(key)
        if memo is None:
            self._members[key] = []  # an include cycle finds nothing more
            memo = self._members[key] = self._member(module, name, kinds, depth)
        return memo

    def _member(
        self, module: Module, name: str, kinds: frozenset[DefKind], depth: int
    ) -> list[Found]:
        if isinstance(module, Wrapper):
            main = [
                u
                for u in self.index.units_named(module.library.wrapper)
                if u.stanza == module.library
            ]
            return [f for u in main for f in self.member(UnitScope(u), name, kinds, depth + 1)]
        found: list[Found] = []
        for source in module.unit.files():
            summary = self.index.summary(source.path)
            if summary is None:
                continue
            found.extend(
                Found(source, d)
                for d in summary.defined(name)
                if d.kind in kinds and d.scope == module.scope
            )
            if found:
                return found  # the interface hides the implementation
        for source in module.unit.files():
            summary = self.index.summary(source.path)
            if summary is None:
                continue
            for imp in summary.imports:
                if imp.include and not imp.local and imp.scope == module.scope:
                    loc = Location(source, imp.line, imp.scope)
                    found.extend(
                        f
                        for m in self.module(imp.path, loc, depth + 1)
                        for f in self.member(m, name, kinds, depth + 1)
                    )
            if found:
                return found
        return found

    def _wrapped_units(self, module: Module, name: str) -> list[Module]:
        """`Geo.Vec` when `Geo` is a wrapper without a main module of its own."""
        if not isinstance(module, Wrapper):
            return []
        lib = module.library
        if any(u.stanza == lib for u in self.index.units_named(lib.wrapper)):
            return []  # the main module decides what the library exports
        return [UnitScope(u) for u in self.index.units_named(name) if u.stanza == lib]

    def module_of(self, found: Found, depth: int) -> list[Module]:
        """The module a module definition stands for (through aliases and functors)."""
        d = found.definition
        if depth > MAX_DEPTH:
            return []
        unit = self.index.unit_of(found.file.path)
        loc = Location(found.file, d.line, d.scope)
        if d.body is not None and not d.args and d.kind is DefKind.MODULE:
            return self.module(d.body, loc, depth + 1)
        if d.body is not None and d.args:
            functors = self._defs(d.body, _MODULE_KINDS, loc, depth + 1)
            return [m for f in functors for m in self.functor_result(f, depth + 1)]
        out: list[Module] = []
        if unit is not None:
            out.append(UnitScope(unit, (*d.scope, d.name)))
        if d.signature is not None:
            out.extend(self.module_type(d.signature, loc, depth + 1))
        return out

    def functor_result(self, found: Found, depth: int) -> list[Module]:
        d = found.definition
        loc = Location(found.file, d.line, d.scope)
        if d.signature is not None:
            result = self.module_type(d.signature, loc, depth + 1)
            if result:
                return result
        unit = self.index.unit_of(found.file.path)
        return [UnitScope(unit, (*d.scope, d.name))] if unit is not None else []

    def module_type(self, path: Sequence[str], loc: Location, depth: int) -> list[Module]:
        out: list[Module] = []
        for f in self._defs(path, _MODULE_TYPE_KINDS, loc, depth):
            unit = self.index.unit_of(f.file.path)
            if unit is not None:
                out.append(UnitScope(unit, (*f.definition.scope, f.definition.name)))
        return out

    def _defs(
        self, path: Sequence[str], kinds: frozenset[DefKind], loc: Location, depth: int
    ) -> list[Found]:
        if len(path) == 1:
            return self.in_scope(path[0], kinds, loc, depth)
        return [
            f
            for m in self.module(path[:-1], loc, depth)
            for f in self.member(m, path[-1], kinds, depth)
        ]

    # -- fallback ------------------------------------------------------------

    def by_name(self, name: str, kinds: frozenset[DefKind]) -> list[Found]:
        """Module-level definitions named `name` anywhere, if there are few enough."""
        found: list[Found] = []
        definers = self.index.definers(name)
        if len({s.path.with_suffix("") for s in definers}) > MAX_FALLBACK:
            return []  # `t`, `create`: defined everywhere, so this finds nothing useful
        for source in definers:
            summary = self.index.summary(source.path)
            if summary is None:
                continue
            found.extend(Found(source, d) for d in summary.defined(name) if d.kind in kinds)
        by_unit: dict[object, list[Found]] = {}
        for f in found:
            by_unit.setdefault(f.file.path.with_suffix(""), []).append(f)
        found = [f for group in by_unit.values() for f in _interface_first(group)]
        return found if len(found) <= MAX_FALLBACK else []


def _interface_first(found: list[Found]) -> list[Found]:
    mli = [f for f in found if f.file.path.suffix == ".mli"]
    return mli or found


def _visible(scope: tuple[str, ...], at: tuple[str, ...]) -> bool:
    """A definition in module `scope` is visible from `at` if `scope` encloses it."""
    return at[: len(scope)] == scope


def _unique(items: Iterable[_T]) -> list[_T]:
    return list(dict.fromkeys(items))
