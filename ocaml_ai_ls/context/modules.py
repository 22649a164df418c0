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
from .words import Words

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
    entries: list[Entry]
    written: list[str]
    scores: list[float]
    usage: list[int]
    here: list[int]
    flags: list[int]

    def candidate(self, i: int) -> Candidate:
        e = self.entries[i]
        d = e.definition
        flags = self.flags[i]
        why = [self.module.reason]
        if self.usage[i]:
            why.append(f"{self.written[i]}.{d.name} is written {self.usage[i]}× in the project")
        if self.here[i]:
            why.append(f"{self.here[i]}× in this file")
        why += [text for bit, text in _WHY.items() if flags & bit]
        if flags & _DECLARES:
            why = ["declares the target"]
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
    entries: Sequence[Entry],
    usage: Mapping[tuple[str, str], int],
    here_uses: Mapping[tuple[str, str], int],
    words: Words,
) -> Scored:
    """Each entry of one module (those at the module's scope and below) with its score."""
    module = chosen.module
    depth = len(module.scope)
    mine = [e for e in entries if e.definition.scope[:depth] == module.scope]
    qualifier = module.scope[-1] if module.scope else module.unit.name
    written = [
        e.definition.scope[-1] if len(e.definition.scope) > depth else qualifier for e in mine
    ]
    counts = [usage.get((w, e.definition.name), 0) for w, e in zip(written, mine, strict=True)]
    here = [here_uses.get((w, e.definition.name), 0) for w, e in zip(written, mine, strict=True)]
    scored = Scored(chosen, rel, mine, written, [], counts, here, [])
    if not mine:
        return scored
    total = sum(counts) + SMOOTHING * len(mine)
    closeness = chosen.closeness or {}
    close = [closeness.get(e.definition.name, 0.0) for e in mine] if closeness else []
    close_total = sum(close)
    usage_part, close_part = (CLOSE_USAGE, CLOSENESS) if close_total else (USAGE, 0.0)
    even = (1 - usage_part - close_part) / len(mine)
    scale = ENTRIES_USED if chosen.role == MODULE else OWN_ENTRIES_USED
    named = words.names()
    weight, floor, declares = chosen.weight, chosen.floor, chosen.declares
    for i, e in enumerate(mine):
        d = e.definition
        flags = 0
        share = usage_part * (counts[i] + SMOOTHING) / total + even
        if close_total and close[i]:
            share += close_part * close[i] / close_total
            flags |= _NEAR
        p = scale * share
        if here[i]:
            p *= IN_FILE
        if d.name in named:
            p = max(p, NAMED_ENTRY)
            flags |= _NAMED
        elif words.parts and (overlap := words.overlap(d.name)):
            p *= 1 + SHARED_WORDS * overlap
            flags |= _WORDS
        if d.kind is DefKind.TYPE and d.name == "t" and len(d.scope) == depth:
            p = max(p, MAIN_TYPE)
            flags |= _MAIN
        p = max(p, floor)
        if e.in_module_type:
            p *= MODULE_TYPE_MEMBER
        score = weight * min(p, 1.0)
        if d.name in declares and len(d.scope) == depth:
            score = DECLARES_TARGET
            flags |= _DECLARES
        scored.scores.append(score)
        scored.flags.append(flags)
    return scored


def _headers(summary: FileSummary) -> dict[tuple[str, ...], tuple[DefKind, tuple[int, ...]]]:
    """Each module (type) of a file by its scope path, with the lines that open it."""
    out: dict[tuple[str, ...], tuple[DefKind, tuple[int, ...]]] = {}
    for d in summary.definitions:
        if d.kind in _MODULES:
            out[(*d.scope, d.name)] = (d.kind, tuple(range(d.line, d.sig_end_line + 1)))
    return out
