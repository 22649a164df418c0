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

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from cachetools import LRUCache

from .index import ModuleUnit, WorkspaceIndex
from .model import GAP_TOKENS, MODULE, Candidate, estimate_tokens
from .resolve import Location, Module, Resolver, UnitScope
from .summary import FULL_KINDS, Definition, DefKind, FileSummary
from .words import Words, name_parts

#: Weights of a module, by why it is in scope.
USED_BY_TARGET = 0.35
NAMED_IN_INSTRUCTION = 0.3
OPENED = 0.2
#: Modules a change uses, about: a named module's weight is this times its share
#: of the file's module mentions, between NAMED_MIN and NAMED_MAX.
MODULES_USED = 3.0
NAMED_MIN, NAMED_MAX = 0.05, 0.9
#: The file's most mentioned module names that are followed through its opens and
#: aliases when no unit of the project has that name (the others are left alone).
RESOLVED_NAMES = 12
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
    beside: tuple[int, Mapping[str, int]] = (0, {}),
    local: frozenset[str] = frozenset(),
) -> list[InScope]:
    """Every module the change may reach for, best first (the file's own module left out).

    `named` counts the file's mentions of each module name (near ones weighing more);
    `beside` is how many files the file's directory holds and how many name each module;
    `local` holds the module aliases the file defines itself (`module L = Lwt`)."""
    found: dict[UnitScope, InScope] = {}

    def add(module: Module, weight: float, reason: str) -> None:
        if not isinstance(module, UnitScope) or module.unit is own:
            return
        old = found.get(module)
        if old is None:
            found[module] = InScope(module, weight, reason)
        elif weight > old.weight:  # the strongest reason first, and one more at most
            found[module] = InScope(module, weight, f"{reason}; {old.reason.split('; ')[0]}")
        elif "; " not in old.reason:
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
    weights = named_weights(named)
    worth = sorted(weights, key=lambda n: -weights[n])[:RESOLVED_NAMES]
    for name, weight in weights.items():
        for m in _modules_named(name, index, resolver, here, local, name in worth):
            add(m, weight, f"the file names {name} ({weight:.2f})")
    files, share = beside
    if files:
        taken = 0
        for name, count in sorted(share.items(), key=lambda item: (-item[1], item[0])):
            fraction = count / files
            if fraction < MIN_NEIGHBOUR_SHARE or taken >= MAX_NEIGHBOUR_MODULES:
                break
            if name in named:
                continue
            units = _modules_named(name, index, resolver, here, local, resolve=False)
            for m in units:
                add(m, NEIGHBOURS * fraction, f"{fraction:.0%} of the files beside it name {name}")
            taken += bool(units)
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
    name: str,
    index: WorkspaceIndex,
    resolver: Resolver,
    here: Location,
    local: frozenset[str],
    resolve: bool = True,
) -> list[Module]:
    """The project's own unit of a module name, and what the name means at the target
    when that may be something else: a module the file defines (`module L = Lwt`),
    or no unit of that name (a submodule an `open` brought, a wrapped library).

    A prelude's alias (`module Sys = Sys0` in base's `Import`) or one to a library
    outside the project still leaves `Sys.getenv` where the project's `sys.mli` says,
    and following every `open` for every name the file writes costs more than the
    rest of the request. `local` holds the aliases the file defines; without
    `resolve`, a name that is no unit of the project is left alone."""
    own = index.unit_of(here.file.path)
    named = [u for u in index.units_named(name) if u is not own]
    if own is not None and own.stanza is not None:
        named = [u for u in named if u.stanza == own.stanza] or named
    elif own is not None:
        named = [u for u in named if u.dir == own.dir] or named
    units: list[Module] = [UnitScope(u) for u in named]
    if (units or not resolve) and name not in local:
        return units
    return [*resolver.module((name,), here, 0), *units]


def _visible_units(index: WorkspaceIndex, resolver: Resolver, own: ModuleUnit) -> list[ModuleUnit]:
    """The units of the file's own library and of the workspace libraries it uses."""
    if own.stanza is None:
        return [u for u in index.tables.units.values() if u.dir == own.dir]
    stanzas = {own.stanza, *resolver.dependencies(own.stanza)}
    return [u for u in index.tables.units.values() if u.stanza in stanzas]


@dataclass(frozen=True, slots=True)
class Entry:
    """One definition of an interface, ready to be shown: what depends only on the
    file's text, computed once per version of the file."""

    definition: Definition
    #: 0-based lines in full (doc comment, enclosing module headers) and briefly.
    lines: tuple[int, ...]
    texts: tuple[str, ...]
    brief: tuple[int, ...]
    #: What the brief and the full form cost, in tokens.
    cost: int
    full_cost: int
    #: Inside a `module type ... = sig ... end`: not `M.name` itself.
    in_module_type: bool


#: Why an entry scored as it did (bits of `Scored.flags`).
_NEAR, _NAMED, _WORDS, _MAIN, _DECLARES = 1, 2, 4, 8, 16
_WHY = {
    _NEAR: "defined near the target",
    _NAMED: "named in the instruction",
    _WORDS: "shares words with the instruction",
    _MAIN: "the module's main type",
}


@dataclass(frozen=True)
class Scored:
    """One module's entries with their scores, in parallel lists: a request scores
    thousands of entries and makes candidates of the few hundred worth showing."""

    module: InScope
    rel: str
    entries: Sequence[Entry]
    written: Sequence[str]
    scores: list[float]
    usage: Sequence[int]
    here: dict[int, int]
    #: Why an entry scored as it did, for the entries something raised.
    flags: dict[int, int]

    def candidate(self, i: int) -> Candidate:
        e = self.entries[i]
        d = e.definition
        flags = self.flags.get(i, 0)
        if flags & _DECLARES:
            why = ["declares the target"]
        else:
            why = [self.module.reason]
            if self.usage[i]:
                why.append(f"{self.written[i]}.{d.name} is written {self.usage[i]}× in the project")
            if here := self.here.get(i):
                why.append(f"{here}× in this file")
            why += [text for bit, text in _WHY.items() if flags & bit]
        return Candidate(
            self.module.role,
            self.rel,
            e.lines,
            e.texts,
            self.scores[i],
            "; ".join(why),
            f"{self.written[i]}.{d.name}: {d.kind}",
            e.brief if e.brief != e.lines else (),
            e.cost,
            e.full_cost,
        )


@dataclass(frozen=True)
class _ModuleFacts:
    """What scoring a module's entries needs that only changes with the file's text and
    the project's usage counts: computed once, then each request only multiplies."""

    entries: tuple[Entry, ...]
    written: tuple[str, ...]
    usage: tuple[int, ...]
    total: float
    costs: tuple[int, ...]
    by_name: dict[str, tuple[int, ...]]
    by_part: dict[str, tuple[int, ...]]
    #: The module's main type `t`, and the entries of its module types.
    main: tuple[int, ...]
    in_module_type: tuple[int, ...]


#: By (entries, usage counts, module, their generation); the objects are kept to
#: tell a reused id from the same one.
_FACTS: LRUCache[
    tuple[object, ...],
    tuple[tuple[Entry, ...], Mapping[tuple[str, str], int], _ModuleFacts],
] = LRUCache(maxsize=1024)


def _module_facts(
    module: UnitScope,
    entries: tuple[Entry, ...],
    usage: Mapping[tuple[str, str], int],
    generation: int,
) -> _ModuleFacts:
    key = (id(entries), id(usage), module.scope, module.unit.name, generation)
    with _ENTRIES_LOCK:
        found = _FACTS.get(key)
    if found is not None and found[0] is entries and found[1] is usage:
        return found[2]
    depth = len(module.scope)
    mine = tuple(e for e in entries if e.definition.scope[:depth] == module.scope)
    qualifier = module.scope[-1] if module.scope else module.unit.name
    written = tuple(
        e.definition.scope[-1] if len(e.definition.scope) > depth else qualifier for e in mine
    )
    counts = tuple(usage.get((w, e.definition.name), 0) for w, e in zip(written, mine, strict=True))
    by_name: dict[str, list[int]] = {}
    by_part: dict[str, list[int]] = {}
    for i, e in enumerate(mine):
        by_name.setdefault(e.definition.name, []).append(i)
        for part in name_parts(e.definition.name):
            by_part.setdefault(part, []).append(i)
    facts = _ModuleFacts(
        mine,
        written,
        counts,
        sum(counts) + SMOOTHING * len(mine),
        tuple(e.cost for e in mine),
        {k: tuple(v) for k, v in by_name.items()},
        {k: tuple(v) for k, v in by_part.items()},
        tuple(
            i
            for i in by_name.get("t", ())
            if mine[i].definition.kind is DefKind.TYPE and len(mine[i].definition.scope) == depth
        ),
        tuple(i for i, e in enumerate(mine) if e.in_module_type),
    )
    with _ENTRIES_LOCK:
        _FACTS[key] = (entries, usage, facts)
    return facts


_ENTRIES: LRUCache[int, tuple[FileSummary, tuple[Entry, ...]]] = LRUCache(maxsize=512)
_ENTRIES_LOCK = threading.Lock()


def file_entries(summary: FileSummary, read: Callable[[], list[str] | None]) -> tuple[Entry, ...]:
    """The entries of a file (its definitions but constructors and fields, which come
    with their type), remembered per summary: the same text gives the same entries,
    and a request reads dozens of interfaces. `read` gives the file's lines."""
    with _ENTRIES_LOCK:
        found = _ENTRIES.get(id(summary))
    if found is not None and found[0] is summary:
        return found[1]
    lines = read()
    if lines is None:
        return ()
    headers = _headers(summary)
    out: list[Entry] = []
    for d in summary.definitions:
        if d.kind in (DefKind.CONSTRUCTOR, DefKind.FIELD):
            continue
        enclosing = [
            headers[d.scope[:k]] for k in range(1, len(d.scope) + 1) if d.scope[:k] in headers
        ]
        head = [n for _, numbers in enclosing for n in numbers]
        last = d.end_line if d.kind in FULL_KINDS else d.sig_end_line
        full = [n for n in sorted({*head, *range(d.start_line, last + 1)}) if n < len(lines)]
        if d.kind in FULL_KINDS and last - d.line >= BRIEF_TYPE_LINES:
            brief = sorted({*head, d.line})
        else:
            brief = sorted({*head, *range(d.line, last + 1)})
        brief = [n for n in brief if n < len(lines)]
        if not full or not brief:
            continue
        out.append(
            Entry(
                d,
                tuple(full),
                tuple(lines[n] for n in full),
                tuple(brief),
                estimate_tokens(lines[n] for n in brief) + GAP_TOKENS,
                estimate_tokens(lines[n] for n in full) + GAP_TOKENS,
                any(kind is DefKind.MODULE_TYPE for kind, _ in enclosing),
            )
        )
    entries = tuple(out)
    with _ENTRIES_LOCK:
        _ENTRIES[id(summary)] = (summary, entries)
    return entries


def score_entries(
    chosen: InScope,
    rel: str,
    entries: tuple[Entry, ...],
    usage: Mapping[tuple[str, str], int],
    here_uses: Mapping[str, Mapping[str, int]],
    words: Words,
    generation: int = 0,
) -> Scored:
    """Each entry of one module (those at the module's scope and below) with its score.

    `here_uses` maps a module name to how often this file writes each of its names;
    `generation` names the state of `usage` (see `WorkspaceIndex.names_generation`)."""
    module = chosen.module
    f = _module_facts(module, entries, usage, generation)
    n = len(f.entries)
    scored = Scored(chosen, rel, f.entries, f.written, [], f.usage, {}, {})
    if not n:
        return scored
    flags = scored.flags
    closeness = chosen.closeness or {}
    close = {
        i: c for name, ids in f.by_name.items() if (c := closeness.get(name, 0.0)) for i in ids
    }
    close_total = sum(close.values())
    usage_part, close_part = (CLOSE_USAGE, CLOSENESS) if close_total else (USAGE, 0.0)
    scale = ENTRIES_USED if chosen.role == MODULE else OWN_ENTRIES_USED
    even = scale * (1 - usage_part - close_part) / n
    per_use = scale * usage_part / f.total
    p = [per_use * (c + SMOOTHING) + even for c in f.usage]
    for i, c in close.items():
        p[i] += scale * close_part * c / close_total
        flags[i] = flags.get(i, 0) | _NEAR
    for written in set(f.written):
        for name, count in here_uses.get(written, {}).items():
            for i in f.by_name.get(name, ()):
                if f.written[i] == written:
                    p[i] *= IN_FILE
                    scored.here[i] = count
    named = words.names()
    for name in named:
        for i in f.by_name.get(name, ()):
            p[i] = max(p[i], NAMED_ENTRY)
            flags[i] = flags.get(i, 0) | _NAMED
    if words.parts:
        sharing = {i for part in words.parts for i in f.by_part.get(part, ())}
        for i in sharing:
            if not flags.get(i, 0) & _NAMED:
                p[i] *= 1 + SHARED_WORDS * words.overlap(f.entries[i].definition.name)
                flags[i] = flags.get(i, 0) | _WORDS
    for i in f.main:
        p[i] = max(p[i], MAIN_TYPE)
        flags[i] = flags.get(i, 0) | _MAIN
    if chosen.floor:
        p = [max(x, chosen.floor) for x in p]
    for i in f.in_module_type:
        p[i] *= MODULE_TYPE_MEMBER
    weight = chosen.weight
    scored.scores.extend(weight * (x if x < 1.0 else 1.0) for x in p)
    depth = len(module.scope)
    for name in chosen.declares:
        for i in f.by_name.get(name, ()):
            if len(f.entries[i].definition.scope) == depth:
                scored.scores[i] = DECLARES_TARGET
                flags[i] = _DECLARES
    return scored


def _headers(summary: FileSummary) -> dict[tuple[str, ...], tuple[DefKind, tuple[int, ...]]]:
    """Each module (type) of a file by its scope path, with the lines that open it."""
    out: dict[tuple[str, ...], tuple[DefKind, tuple[int, ...]]] = {}
    for d in summary.definitions:
        if d.kind in _MODULES:
            out[(*d.scope, d.name)] = (d.kind, tuple(range(d.line, d.sig_end_line + 1)))
    return out
