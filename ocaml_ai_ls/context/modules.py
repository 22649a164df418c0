"""The modules a change may reach for, and their entries, scored.

A real change reaches for what the edited item does not use yet: other
entries of the modules the file already names (`Lwt.pause` in a file full of
`Lwt.bind`), modules the instruction names, modules the neighbouring files
use (`Lwt_io` in a test directory, base's own `List` everywhere). So every
module in scope gets a weight (how likely the change uses it at all) and each
of its entries a share (how likely that entry, given the module), from what
predicts use: how often the project writes `M.name`, whether this file
already does, and the words the entry shares with the instruction.

    score(entry) = weight(module) × min(1, k × share(entry))
    share = λ × (uses(M.name) + a) / (uses(M.*) + a × entries) + (1 - λ) / entries,
        raised by use in this file and by words of the instruction

where k is about how many entries of a module a change reaches for.
"""

from __future__ import annotations

import math
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
USED_BY_TARGET = 0.9
NAMED_IN_INSTRUCTION = 0.9
OPENED = 0.6
#: A module the file names n times: NAMED_BASE + NAMED_RANGE * (1 - exp(-n / NAMED_SCALE)).
NAMED_BASE, NAMED_RANGE, NAMED_SCALE = 0.45, 0.45, 4.0
#: A module the file does not name, used by a share f of the files beside it: f * NEIGHBOURS.
NEIGHBOURS = 0.5
MIN_NEIGHBOUR_SHARE = 0.15
MAX_NEIGHBOUR_MODULES = 12
#: A module whose name shares words with the instruction (`unix` and `Lwt_unix`).
WORD_MATCH = 0.4
MAX_WORD_MODULES = 5
#: Smoothing of the usage counts (a few uses of an entry no one writes yet).
SMOOTHING = 0.3
#: How many of a module's entries a change that uses it reaches for, about.
ENTRIES_USED = 3.0
#: How much an entry's share follows the project's usage counts, the rest being
#: even: the other half of the module being edited is reached for more evenly.
POPULARITY, OWN_POPULARITY = 0.7, 0.3
#: How much more likely an entry is when this file already writes `M.name`.
IN_FILE = 3.0
#: Entries of a module type (`module type S = sig ... end`) are not `M.name` themselves.
MODULE_TYPE_MEMBER = 0.3
#: A type shown whole in its brief form up to this many lines (else its first line).
BRIEF_TYPE_LINES = 10


@dataclass(frozen=True)
class InScope:
    """A module the change may use, how likely (0..1), and why."""

    module: UnitScope
    weight: float
    reason: str
    role: int = MODULE


def named_weight(count: int) -> float:
    return NAMED_BASE + NAMED_RANGE * (1 - math.exp(-count / NAMED_SCALE))


def modules_in_scope(
    *,
    index: WorkspaceIndex,
    resolver: Resolver,
    here: Location,
    own: ModuleUnit | None,
    named: Mapping[str, int],
    used: Sequence[Module],
    opened: Sequence[tuple[str, ...]],
    words: Words,
    neighbours: Sequence[Path],
) -> list[InScope]:
    """Every module the change may reach for, best first (the file's own module left out)."""
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

    def resolve(name: str) -> list[Module]:
        return resolver.module((name,), here, 0)

    for m in used:
        add(m, USED_BY_TARGET, "used by the target")
    for word in words.identifiers:
        path = tuple(word.split("."))
        modules = path if word[:1].isupper() and path[-1][:1].isupper() else path[:-1]
        if modules:
            for m in resolver.module(modules, here, 0):
                add(m, NAMED_IN_INSTRUCTION, f"{'.'.join(modules)} is named in the instruction")
    for path in opened:
        for m in resolver.module(path, here, 0):
            add(m, OPENED, f"the file opens {'.'.join(path)}")
    for name, count in named.items():
        for m in resolve(name):
            add(m, named_weight(count), f"the file names {name} {count}×")
    share = Counter(name for path in neighbours for name in index.modules_named_in(path))
    if neighbours:
        ranked = [(n, c / len(neighbours)) for n, c in share.most_common() if n not in named]
        taken = 0
        for name, fraction in ranked:
            if fraction < MIN_NEIGHBOUR_SHARE or taken >= MAX_NEIGHBOUR_MODULES:
                break
            modules = resolve(name)
            for m in modules:
                add(m, NEIGHBOURS * fraction, f"{fraction:.0%} of the files beside it name {name}")
            taken += bool(modules)
    if words.parts and own is not None:
        matches = [
            (words.overlap(u.name), u)
            for u in _visible_units(index, resolver, own)
            if UnitScope(u) not in found
        ]
        matches = sorted((m for m in matches if m[0] > 0), key=lambda m: -m[0])
        for overlap, unit in matches[:MAX_WORD_MODULES]:
            add(
                UnitScope(unit),
                WORD_MATCH * overlap,
                f"{unit.name} shares words with the instruction",
            )
    return sorted(found.values(), key=lambda s: -s.weight)


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
    source = index.files.get(path) if path is not None else _interface(module.unit)
    if source is None:
        return
    summary = index.summary(source.path)
    lines = read(source.path)
    if summary is None or lines is None:
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

    popularity = [index.uses(written_as(d), d.name) for d in defs]
    total = sum(popularity)
    named = words.names()
    weight = POPULARITY if chosen.role == MODULE else OWN_POPULARITY
    uniform = 1 / len(defs)
    for d, pop in zip(defs, popularity, strict=True):
        share = (pop + SMOOTHING) / (total + SMOOTHING * len(defs))
        p = ENTRIES_USED * (weight * share + (1 - weight) * uniform)
        why: list[str] = []
        if pop:
            why.append(f"{written_as(d)}.{d.name} is written {pop}× in the project")
        here = here_uses.get((written_as(d), d.name), 0)
        if here:
            p *= IN_FILE
            why.append(f"{here}× in this file")
        if d.name in named:
            p = max(p, 0.5)
            why.append("named in the instruction")
        else:
            overlap = words.overlap(d.name)
            if overlap:
                p *= 1 + 4 * overlap
                why.append("shares words with the instruction")
        if d.kind is DefKind.TYPE and d.name == "t" and len(d.scope) == len(module.scope):
            p = max(p, 0.3)
            why.append("the module's main type")
        enclosing = [
            headers[d.scope[:k]] for k in range(1, len(d.scope) + 1) if d.scope[:k] in headers
        ]
        if any(kind is DefKind.MODULE_TYPE for kind, _ in enclosing):
            p *= MODULE_TYPE_MEMBER
        score = chosen.weight * min(p, 1.0)
        head = [n for _, numbers in enclosing for n in numbers]
        last = d.end_line if d.kind in FULL_KINDS else d.sig_end_line
        full = sorted({*head, *range(d.start_line, last + 1)})
        if d.kind in FULL_KINDS and last - d.line >= BRIEF_TYPE_LINES:
            brief = sorted({*head, d.line})
        else:
            brief = sorted({*head, *range(d.line, last + 1)})
        full = [n for n in full if n < len(lines)]
        brief = [n for n in brief if n < len(lines)]
        if not full:
            continue
        reason = "; ".join([chosen.reason, *why])
        yield Candidate(
            chosen.role,
            source.rel,
            tuple(full),
            tuple(lines[n] for n in full),
            score,
            reason,
            f"{written_as(d)}.{d.name}: {d.kind}",
            tuple(brief) if brief != full else (),
        )


_MODULES = frozenset({DefKind.MODULE, DefKind.FUNCTOR, DefKind.MODULE_TYPE})


def _interface(unit: ModuleUnit) -> SourceFile | None:
    return unit.mli or unit.ml


def _headers(summary: FileSummary) -> dict[tuple[str, ...], tuple[DefKind, tuple[int, ...]]]:
    """Each module (type) of a file by its scope path, with the lines that open it."""
    out: dict[tuple[str, ...], tuple[DefKind, tuple[int, ...]]] = {}
    for d in summary.definitions:
        if d.kind in _MODULES:
            out[(*d.scope, d.name)] = (d.kind, tuple(range(d.line, d.sig_end_line + 1)))
    return out
