"""The modules a change may reach for, and their entries, scored.

A real change reaches for what the edited item does not use yet: other
entries of the modules the file already names (`Lwt.pause` in a file full of
`Lwt.bind`), modules the instruction names, modules the neighbouring files
use (`Lwt_io` in a test directory, base's own `List` everywhere). So every
module in scope gets a weight (how likely the change uses it at all) and each
of its entries a share (how likely that entry, given the module):

    weight(M)   named by the target or the instruction: high; named by the file:
                its share of the file's module mentions (near ones count more),
                times the modules a change uses; named by the files beside it:
                the share of them that do
    share(e)    λ × usage(e) + μ × closeness(e) + (1 - λ - μ) / entries, where
                usage is how often the project writes `M.e` (smoothed) and
                closeness, for the other half of the module being edited, how
                near the target its counterpart is
    score(e)    weight(M) × min(1, k × share(e)), raised when this file already
                writes `M.e` or the instruction shares words with `e`

with k about how many entries of a module a change reaches for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .index import ModuleUnit, SourceFile, WorkspaceIndex
from .model import MODULE, Candidate
from .resolve import Location, Module, Resolver, UnitScope
from .summary import FULL_KINDS, Definition, DefKind, FileSummary
from .words import Words

#: Weights of a module, by why it is in scope.
USED_BY_TARGET = 0.35
NAMED_IN_INSTRUCTION = 0.3
OPENED = 0.2
#: Modules a change uses, about: a named module's weight is this times its share
#: of the file's module mentions, between NAMED_MIN and NAMED_MAX.
MODULES_USED = 3.0
NAMED_MIN, NAMED_MAX = 0.05, 0.9
#: A module the file does not name, used by a share f of the files beside it: f * NEIGHBOURS.
NEIGHBOURS = 0.4
MIN_NEIGHBOUR_SHARE = 0.02
MAX_NEIGHBOUR_MODULES = 40
#: A module whose name shares words with the instruction (`unix` and `Lwt_unix`).
WORD_MATCH = 0.1
MAX_WORD_MODULES = 5
#: Smoothing of the usage counts (a few uses of an entry no one writes yet).
SMOOTHING = 0.3
#: How many of a module's entries a change that uses it reaches for, about (more
#: of the other half of the module being edited).
ENTRIES_USED, OWN_ENTRIES_USED = 3.0, 5.0
#: λ and μ: how much an entry's share follows usage and closeness (the rest is even).
USAGE, CLOSE_USAGE, CLOSENESS = 0.7, 0.3, 0.5
#: How much more likely an entry is when this file already writes `M.name`.
IN_FILE = 3.0
#: An entry named in the instruction is at least this likely; words in common raise it.
NAMED_ENTRY, SHARED_WORDS = 0.5, 2.0
#: A module's main type `t` is at least this likely.
MAIN_TYPE = 0.3
#: Entries of a module type (`module type S = sig ... end`) are not `M.name` themselves.
MODULE_TYPE_MEMBER = 0.3
#: The declaration of the target in the other half (`val f` for the `let f` being edited).
DECLARES_TARGET = 0.95
#: A type shown whole in its brief form up to this many lines (else its first line).
BRIEF_TYPE_LINES = 10

_MODULES = frozenset({DefKind.MODULE, DefKind.FUNCTOR, DefKind.MODULE_TYPE})


@dataclass(frozen=True)
class InScope:
    """A module the change may use, how likely (0..1), and why.

    `closeness` (name → 0..1) says how near the target each entry's
    counterpart is, for the other half of the module being edited."""

    module: UnitScope
    weight: float
    reason: str
    role: int = MODULE
    closeness: Mapping[str, float] | None = None
    #: Every entry is at least this likely (a small other half: show all of it).
    floor: float = 0.0
    #: Names of the target: their entries declare it (the `val` of the edited `let`).
    declares: frozenset[str] = frozenset()


def named_weights(named: Mapping[str, float]) -> dict[str, float]:
    """Each named module's weight from its share of the file's module mentions."""
    total = sum(named.values())
    if not total:
        return {}
    return {
        name: min(NAMED_MAX, max(NAMED_MIN, MODULES_USED * count / total))
        for name, count in named.items()
    }


def modules_in_scope(
    *,
    index: WorkspaceIndex,
    resolver: Resolver,
    here: Location,
    own: ModuleUnit | None,
    named: Mapping[str, float],
    used: Sequence[Module],
    opened: Sequence[tuple[str, ...]],
    words: Words,
    neighbours: Sequence[Path],
) -> list[InScope]:
    """Every module the change may reach for, best first (the file's own module left out).

    `named` counts the file's mentions of each module name (near ones weighing more)."""
    found: dict[UnitScope, InScope] = {}

    def add(module: Module, weight: float, reason: str) -> None:
        if not isinstance(module, UnitScope) or module.unit is own:
            return
        old = found.get(module)
        if old is None:
            found[module] = InScope(module, weight, reason)
        elif weight > old.weight:
            found[module] = InScope(module, weight, f"{reason}; {old.reason}")
        elif reason not in old.reason:
            found[module] = InScope(module, old.weight, f"{old.reason}; {reason}")

    for m in used:
        add(m, USED_BY_TARGET, "used by the target")
    for word in words.identifiers:
        path = tuple(word.split("."))
        modules = path if path[-1][:1].isupper() else path[:-1]
        if modules and modules[0][:1].isupper():
            for m in resolver.module(modules, here, 0):
                add(m, NAMED_IN_INSTRUCTION, f"{'.'.join(modules)} is named in the instruction")
    for path in opened:
        for m in resolver.module(path, here, 0):
            add(m, OPENED, f"the file opens {'.'.join(path)}")
    for name, weight in named_weights(named).items():
        for m in _modules_named(name, index, resolver, here):
            add(m, weight, f"the file names {name} ({weight:.2f})")
    if neighbours:
        share = Counter(name for path in neighbours for name in index.modules_named_in(path))
        taken = 0
        for name, count in sorted(share.items(), key=lambda item: (-item[1], item[0])):
            fraction = count / len(neighbours)
            if fraction < MIN_NEIGHBOUR_SHARE or taken >= MAX_NEIGHBOUR_MODULES:
                break
            if name in named:
                continue
            modules = _modules_named(name, index, resolver, here)
            for m in modules:
                add(m, NEIGHBOURS * fraction, f"{fraction:.0%} of the files beside it name {name}")
            taken += bool(modules)
    if words.parts and own is not None:
        matches = [
            (words.overlap(u.name), u)
            for u in _visible_units(index, resolver, own)
            if UnitScope(u) not in found
        ]
        best = sorted((m for m in matches if m[0] > 0), key=lambda m: -m[0])
        for overlap, unit in best[:MAX_WORD_MODULES]:
            add(
                UnitScope(unit),
                WORD_MATCH * overlap,
                f"{unit.name} shares words with the instruction",
            )
    return sorted(found.values(), key=lambda s: -s.weight)


def _modules_named(
    name: str, index: WorkspaceIndex, resolver: Resolver, here: Location
) -> list[Module]:
    """What a module name means at the target, and the project's own unit of that name:
    a prelude's alias (`module Sys = Sys0` in base's `Import`) or one to a library
    outside the project still leaves `Sys.getenv` where the project's `sys.mli` says."""
    found = resolver.module((name,), here, 0)
    own = index.unit_of(here.file.path)
    named = [u for u in index.units_named(name) if u is not own]
    same = [u for u in named if own is not None and u.stanza == own.stanza]
    return [*found, *(UnitScope(u) for u in (same or named))]


def _visible_units(index: WorkspaceIndex, resolver: Resolver, own: ModuleUnit) -> list[ModuleUnit]:
    """The units of the file's own library and of the workspace libraries it uses."""
    if own.stanza is None:
        return [u for u in index.tables.units.values() if u.dir == own.dir]
    stanzas = {own.stanza, *resolver.dependencies(own.stanza)}
    return [u for u in index.tables.units.values() if u.stanza in stanzas]


def entries(
    chosen: InScope,
    index: WorkspaceIndex,
    read: Callable[[Path], list[str] | None],
    here_uses: Mapping[tuple[str, str], int],
    words: Words,
    path: Path | None = None,
) -> Iterator[Candidate]:
    """The entries of one module as candidates: its interface's definitions (the
    `.mli`, else the `.ml`; `path` instead when given), each with its enclosing
    module headers."""
    module = chosen.module
    source = index.files.get(path) if path is not None else module.unit.mli or module.unit.ml
    summary = index.summary(source.path) if source is not None else None
    lines = read(source.path) if source is not None else None
    if source is None or summary is None or lines is None:
        return
    headers = _headers(summary)
    defs = [
        d
        for d in summary.definitions
        if d.kind not in (DefKind.CONSTRUCTOR, DefKind.FIELD)
        and d.scope[: len(module.scope)] == module.scope
    ]
    if not defs:
        return
    qualifier = module.scope[-1] if module.scope else module.unit.name

    def written_as(d: Definition) -> str:
        return d.scope[-1] if len(d.scope) > len(module.scope) else qualifier

    usage = [index.uses(written_as(d), d.name) for d in defs]
    total = sum(usage)
    close = [chosen.closeness.get(d.name, 0.0) for d in defs] if chosen.closeness else []
    close_total = sum(close)
    if close_total:
        usage_part, close_part = CLOSE_USAGE, CLOSENESS
    else:
        usage_part, close_part = USAGE, 0.0
    even = (1 - usage_part - close_part) / len(defs)
    named = words.names()
    for i, d in enumerate(defs):
        share = usage_part * (usage[i] + SMOOTHING) / (total + SMOOTHING * len(defs)) + even
        why = [chosen.reason]
        if close_total and close[i]:
            share += close_part * close[i] / close_total
            why.append("defined near the target")
        p = (ENTRIES_USED if chosen.role == MODULE else OWN_ENTRIES_USED) * share
        if usage[i]:
            why.append(f"{written_as(d)}.{d.name} is written {usage[i]}× in the project")
        if here := here_uses.get((written_as(d), d.name), 0):
            p *= IN_FILE
            why.append(f"{here}× in this file")
        if d.name in named:
            p = max(p, NAMED_ENTRY)
            why.append("named in the instruction")
        elif overlap := words.overlap(d.name):
            p *= 1 + SHARED_WORDS * overlap
            why.append("shares words with the instruction")
        if d.kind is DefKind.TYPE and d.name == "t" and len(d.scope) == len(module.scope):
            p = max(p, MAIN_TYPE)
            why.append("the module's main type")
        p = max(p, chosen.floor)
        enclosing = [
            headers[d.scope[:k]] for k in range(1, len(d.scope) + 1) if d.scope[:k] in headers
        ]
        if any(kind is DefKind.MODULE_TYPE for kind, _ in enclosing):
            p *= MODULE_TYPE_MEMBER
        head = [n for _, numbers in enclosing for n in numbers]
        score = chosen.weight * min(p, 1.0)
        if d.name in chosen.declares and len(d.scope) == len(module.scope):
            score = DECLARES_TARGET
            why = ["declares the target"]
        candidate = _candidate(chosen, source, lines, d, head)
        if candidate is not None:
            yield Candidate(
                candidate.role,
                candidate.rel,
                candidate.lines,
                candidate.texts,
                score,
                "; ".join(why),
                f"{written_as(d)}.{d.name}: {d.kind}",
                candidate.brief,
            )


def _candidate(
    chosen: InScope, source: SourceFile, lines: list[str], d: Definition, head: list[int]
) -> Candidate | None:
    """The lines of one entry: in full with its doc comment, briefly its bare signature
    (a long type by its first line)."""
    last = d.end_line if d.kind in FULL_KINDS else d.sig_end_line
    full = [n for n in sorted({*head, *range(d.start_line, last + 1)}) if n < len(lines)]
    if d.kind in FULL_KINDS and last - d.line >= BRIEF_TYPE_LINES:
        brief = sorted({*head, d.line})
    else:
        brief = sorted({*head, *range(d.line, last + 1)})
    brief = [n for n in brief if n < len(lines)]
    if not full:
        return None
    return Candidate(
        chosen.role,
        source.rel,
        tuple(full),
        tuple(lines[n] for n in full),
        0.0,
        "",
        "",
        tuple(brief) if brief != full else (),
    )


def _headers(summary: FileSummary) -> dict[tuple[str, ...], tuple[DefKind, tuple[int, ...]]]:
    """Each module (type) of a file by its scope path, with the lines that open it."""
    out: dict[tuple[str, ...], tuple[DefKind, tuple[int, ...]]] = {}
    for d in summary.definitions:
        if d.kind in _MODULES:
            out[(*d.scope, d.name)] = (d.kind, tuple(range(d.line, d.sig_end_line + 1)))
    return out
