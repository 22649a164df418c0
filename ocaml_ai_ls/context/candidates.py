"""Candidates: everything that may help the model with one request, each scored.

From the request's facts (its file's summary, the target item, the
instruction) and the index, without packing anything:

- the target item (always shown) and the rest of its file (whole when small,
  else its opens and each definition, scored by closeness to the target);
- the other half of the module (`.mli` of an `.ml`), entry by entry: the
  declaration of the target first, then by closeness and use (all of a small one);
- definitions of what the target uses, resolved as the compiler does (see
  `resolve`), the types they mention, the module definitions a path goes
  through; definitions the instruction names;
- entries of every module in scope (see `modules`), scored by how likely
  the change reaches for them;
- the dune stanza, and callers of the target.

A score estimates how likely the change needs the lines (0..1); the reason
says where that estimate comes from, for `--explain`.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from .index import SourceFile, WorkspaceIndex
from .model import (
    CALLER,
    DEFINITION,
    DUNE,
    FILE,
    INTERFACE,
    TARGET,
    TYPE,
    Candidate,
    Target,
    estimate_tokens,
)
from .modules import InScope, Scored, file_entries, modules_in_scope, score_entries
from .parsing import SourceKind
from .resolve import Found, Location, Module, Resolver, UnitScope, location, scope_at
from .summary import FULL_KINDS, MATCHES, DefKind, FileSummary, RefKind
from .words import Words

#: Scores by source (see the module docstring); module entries score themselves.
WHOLE_FILE = 0.9
FILE_OPENS = 0.9
#: A definition of the file being edited, `d` lines away from the target: its share
#: of the file's closeness 1 / (1 + d / NEAR_LINES), times how many of the file's
#: definitions a change uses, about (LOCAL_USED); at most NEAR.
NEAR, NEAR_LINES, LOCAL_USED = 0.7, 40.0, 3.0
#: The least score of a caller (they go down by NEXT_CALLER from FIRST_CALLER).
FAR = 0.02
FILE_TYPE = 0.3
OTHER_HALF = 0.9
#: Every entry of a small other half (whole, it costs at most `full_file_tokens`) is
#: at least this likely.
SMALL_HALF = 0.6
USED = 0.9
USED_CONSTRUCTOR = 0.5
THROUGH = 0.7
SIGNATURE_TYPE = 0.25
INSTRUCTION = 0.85
#: A plain word of the instruction ("check", "exceptions") that names something in scope.
INSTRUCTION_WORD = 0.3
DUNE_STANZA = 0.1
FIRST_CALLER, NEXT_CALLER = 0.1, 0.005
#: Definitions of the file being edited made candidates, at most (the nearest).
MAX_FILE_CANDIDATES = 200
#: Entries of modules in scope made candidates, at most (the best by score per token).
MAX_MODULE_CANDIDATES = 300
#: At most this many definitions are taken for one use (an ambiguous name).
MAX_PER_USE = 3
#: What a word of the instruction may name, tried in this order.
_WORD_KINDS_UPPER = (RefKind.CONSTRUCTOR, RefKind.MODULE)
_WORD_KINDS_LOWER = (RefKind.VALUE, RefKind.TYPE, RefKind.FIELD)
#: Mentions of a module this close to the target count NEAR_MENTION times.
NEAR_MENTION, NEAR_MENTION_LINES = 3, 50
#: `M.` in the text of the file, comments included (`(*$T CCInt.equal ... *)` tests).
_MODULE_DOT = re.compile(r"(?<![A-Za-z0-9_'.])([A-Z][A-Za-z0-9_']*)\.")


@dataclass(frozen=True)
class Request:
    """One request as the candidates see it: facts of the buffer, read by the index."""

    path: Path
    rel: str
    lines: list[str]
    kind: SourceKind | None
    summary: FileSummary | None
    #: Stands for the file, with the buffer's summary (instruction comment removed).
    source: SourceFile | None
    #: Target lines, 0-based inclusive; None: the request is about the whole file.
    span: tuple[int, int] | None
    target: Target | None
    instruction: str


def sibling(path: Path) -> Path | None:
    """The other half of a module: `foo.mli` for `foo.ml` and the reverse."""
    kind = SourceKind.of(path)
    if kind is SourceKind.IMPLEMENTATION:
        return path.with_suffix(".mli")
    if kind is SourceKind.INTERFACE:
        return path.with_suffix(".ml")
    return None


def outline(summary: FileSummary) -> list[int]:
    """0-based lines of a file's outline: opens, signatures, whole types."""
    keep: set[int] = set()
    for d in summary.definitions:
        if d.kind in (DefKind.CONSTRUCTOR, DefKind.FIELD):
            continue
        keep.update(range(d.start_line, d.sig_end_line + 1))
    for imp in summary.imports:
        if not imp.local:
            keep.add(imp.line)
    return sorted(keep)


def closeness_at(distance: int) -> float:
    """How near a definition `distance` lines from the target is (1 at the target)."""
    return 1 / (1 + distance / NEAR_LINES)


def collect(
    request: Request,
    index: WorkspaceIndex,
    read: Callable[[Path], list[str] | None],
    *,
    full_file_tokens: int = 1500,
    max_callers: int = 10,
) -> list[Candidate]:
    """Every candidate for the request (unordered; `pack` orders them)."""
    return list(_Collector(request, index, read).all(full_file_tokens, max_callers))


class _Collector:
    def __init__(
        self, request: Request, index: WorkspaceIndex, read: Callable[[Path], list[str] | None]
    ) -> None:
        self.r = request
        self.index = index
        self.read = read
        self.resolver = Resolver(index)
        self.words = Words.of(request.instruction)
        self.used_modules: list[Module] = []
        self.own = index.unit_of(request.path)
        self.module_name = request.source.module if request.source is not None else ""

    def all(self, full_file_tokens: int, max_callers: int) -> Iterator[Candidate]:
        yield from self.current_file(full_file_tokens)
        if self.r.kind is None:
            return
        yield from self.uses()
        yield from self.named()
        yield from self.modules(full_file_tokens)
        yield from self.dune()
        yield from self.callers(max_callers)

    # -- helpers --------------------------------------------------------------

    def candidate(
        self,
        role: int,
        rel: str,
        lines: list[str],
        numbers: Iterable[int],
        score: float,
        reason: str,
        label: str,
        brief: Iterable[int] = (),
    ) -> Candidate | None:
        kept = sorted({n for n in numbers if 0 <= n < len(lines)})
        if not kept:
            return None
        short = sorted({n for n in brief if 0 <= n < len(lines)})
        return Candidate(
            role,
            rel,
            tuple(kept),
            tuple(lines[n] for n in kept),
            score,
            reason,
            label,
            tuple(short) if short and short != kept else (),
        )

    def definition(
        self, role: int, f: Found, score: float, reason: str, used_as: str
    ) -> Candidate | None:
        """A definition by its doc comment and signature (types whole)."""
        d = f.definition
        lines = self.r.lines if f.file.path == self.r.path else self.read(f.file.path)
        if lines is None:
            return None
        last = d.end_line if d.kind in FULL_KINDS else d.sig_end_line
        what = f"{d.owner}.{d.name}" if d.owner else d.name
        # a constructor or field is shown with its whole type, which starts before it
        part = d.kind in (DefKind.CONSTRUCTOR, DefKind.FIELD)
        return self.candidate(
            role,
            f.file.rel,
            lines,
            range(d.start_line, last + 1),
            score,
            reason,
            f"`{used_as}`: {d.kind} {what}",
            () if part else range(d.line, last + 1),
        )

    def _in_target(self, f: Found) -> bool:
        if self.r.span is None or f.file.path != self.r.path:
            return False
        return self.r.span[0] <= f.definition.line <= self.r.span[1]

    # -- the file being edited ---------------------------------------------------

    def current_file(self, full_file_tokens: int) -> Iterator[Candidate]:
        r = self.r
        everything = range(len(r.lines))
        small = r.summary is None or estimate_tokens(r.lines) <= full_file_tokens
        if r.span is None:
            numbers = everything if small or r.summary is None else outline(r.summary)
            label = "the file being edited" if small else "outline of the file"
            c = self.candidate(TARGET, r.rel, r.lines, numbers, 1.0, "", label)
            if c is not None:
                yield c
            return
        start, end = r.span
        name = r.target.name if r.target and r.target.name else "the target"
        c = self.candidate(TARGET, r.rel, r.lines, range(start, end + 1), 1.0, "", f"`{name}`")
        if c is not None:
            yield c
        if small or r.summary is None:
            rest = [n for n in everything if not start <= n <= end]
            c = self.candidate(
                FILE, r.rel, r.lines, rest, WHOLE_FILE, "the file is small", "the rest of the file"
            )
            if c is not None:
                yield c
            return
        summary = r.summary
        opens = [i.line for i in summary.imports if not i.local]
        c = self.candidate(
            FILE, r.rel, r.lines, opens, FILE_OPENS, "what the file opens", "the file's opens"
        )
        if c is not None:
            yield c
        headers = {
            (*d.scope, d.name): range(d.start_line, d.sig_end_line + 1)
            for d in summary.definitions
            if d.kind in (DefKind.MODULE, DefKind.FUNCTOR, DefKind.MODULE_TYPE)
        }
        defs = [
            d
            for d in summary.definitions
            if d.kind not in (DefKind.CONSTRUCTOR, DefKind.FIELD) and not start <= d.line <= end
        ]
        distances = [min(abs(d.line - start), abs(d.line - end)) for d in defs]
        closeness = [closeness_at(distance) for distance in distances]
        total = sum(closeness) or 1.0
        # the nearest, and every type: the file's share of the budget holds no more
        nearest = sorted(range(len(defs)), key=distances.__getitem__)[:MAX_FILE_CANDIDATES]
        chosen = {*nearest, *(i for i, d in enumerate(defs) if d.kind is DefKind.TYPE)}
        for i in sorted(chosen):
            d, distance, close = defs[i], distances[i], closeness[i]
            score = min(NEAR, LOCAL_USED * close / total)
            if d.kind is DefKind.TYPE:
                score = max(score, FILE_TYPE)
            head = [n for k in range(1, len(d.scope) + 1) for n in headers.get(d.scope[:k], ())]
            last = d.end_line if d.kind in FULL_KINDS else d.sig_end_line
            c = self.candidate(
                FILE,
                r.rel,
                r.lines,
                [*head, *range(d.start_line, last + 1)],
                score,
                f"{distance} lines from the target",
                f"{d.kind} {d.name}",
                [*head, *range(d.line, last + 1)],
            )
            if c is not None:
                yield c

    # -- what the target uses --------------------------------------------------------

    def uses(self) -> Iterator[Candidate]:
        """Definitions and types of what the target uses."""
        r = self.r
        if r.summary is None or r.source is None:
            return
        start, end = r.span if r.span is not None else (0, len(r.lines) - 1)
        bound: set[str] = set()
        for chunk in r.summary.chunks:
            if chunk.start_line <= end and start <= chunk.end_line:
                bound |= chunk.summary.bound
        signatures: list[Found] = []
        seen: set[tuple[str, int]] = set()

        def new(f: Found) -> bool:
            key = (f.file.rel, f.definition.line)
            if key in seen or self._in_target(f):
                return False
            seen.add(key)
            return True

        for imp in r.summary.imports:  # `include M` / `open M` inside the target
            if start <= imp.line <= end and not imp.local:
                loc = location(r.source, r.summary, imp.line)
                self.used_modules.extend(self.resolver.module(imp.path, loc, 0))
                for f in self.resolver.module_definitions(imp.path, loc):
                    if new(f):
                        written = ".".join(imp.path)
                        c = self.definition(
                            DEFINITION, f, THROUGH, f"the target opens {written}", written
                        )
                        if c is not None:
                            yield c
        for ref in r.summary.references_in(start, end):
            if len(ref.path) == 1 and ref.kind is RefKind.VALUE and ref.path[0] in bound:
                continue
            loc = location(r.source, r.summary, ref.line)
            used_as = ".".join(ref.path)
            found = [(f, used_as, False) for f in self.resolver.resolve(ref.path, ref.kind, loc)][
                :MAX_PER_USE
            ]
            modules = ref.path if ref.kind is RefKind.MODULE else ref.path[:-1]
            if modules:
                through = ".".join(modules)
                found += [
                    (f, through, True) for f in self.resolver.module_definitions(modules, loc)
                ]
                self.used_modules.extend(self.resolver.module(modules, loc, 0))
            for f, label, is_path in found:
                if not new(f):
                    continue
                if is_path:
                    role, score, why = (
                        DEFINITION,
                        THROUGH,
                        f"the target's `{used_as}` goes through it",
                    )
                elif ref.kind in (RefKind.CONSTRUCTOR, RefKind.FIELD):
                    role, score, why = TYPE, USED_CONSTRUCTOR, f"the target uses `{used_as}`"
                else:
                    role, score, why = DEFINITION, USED, f"the target uses `{used_as}`"
                c = self.definition(role, f, score, why, label)
                if c is not None:
                    yield c
                if f.definition.kind not in FULL_KINDS:
                    signatures.append(f)
        for f in signatures:  # the types a used function takes and returns
            yield from self.signature_types(f, new)

    def signature_types(self, f: Found, new: Callable[[Found], bool]) -> Iterator[Candidate]:
        summary = self.r.summary if f.file.path == self.r.path else self.index.summary(f.file.path)
        if summary is None:
            return
        d = f.definition
        for ref in summary.references_in(d.start_line, d.sig_end_line):
            if ref.kind is not RefKind.TYPE:
                continue
            loc = location(f.file, summary, ref.line)
            for t in self.resolver.resolve(ref.path, ref.kind, loc)[:MAX_PER_USE]:
                if new(t):
                    used_as = ".".join(ref.path)
                    why = f"the signature of `{d.name}` mentions `{used_as}`"
                    c = self.definition(TYPE, t, SIGNATURE_TYPE, why, used_as)
                    if c is not None:
                        yield c

    # -- what the instruction names ------------------------------------------------

    def named(self) -> Iterator[Candidate]:
        """Definitions the instruction names (`IS.of_list`, `Debug`, `zero`) that are in
        scope at the target or members of a module the target uses."""
        r = self.r
        if r.summary is None or r.source is None or not self.words.identifiers:
            return
        loc = location(r.source, r.summary, r.span[0] if r.span is not None else 0)
        for word in self.words.identifiers:
            path = tuple(word.split("."))
            # `Lwt.all`, `bind_error`, `Shape`: a name; "check", "exceptions": maybe one
            prose = word.isalpha() and word.islower()
            found = self._lookup(path, loc, prose)
            if not found and prose and word.endswith("s"):  # "removes": remove
                found = self._lookup((word[:-1],), loc, prose)
            score = INSTRUCTION_WORD if prose else INSTRUCTION
            for f in found[:MAX_PER_USE]:
                if not self._in_target(f):
                    c = self.definition(DEFINITION, f, score, "named in the instruction", word)
                    if c is not None:
                        yield c

    def _lookup(self, path: tuple[str, ...], loc: Location, prose: bool = False) -> list[Found]:
        """What a word of the instruction names at the target; a prose word only what is
        in scope there, not the project-wide lookup of types and fields by name."""
        name = path[-1]
        kinds = _WORD_KINDS_UPPER if name[:1].isupper() else _WORD_KINDS_LOWER
        for kind in kinds:
            if prose:
                found = self.resolver.in_scope(name, MATCHES[kind], loc, 0)
            else:
                found = self.resolver.resolve(path, kind, loc)
            if found:
                return found
        if len(path) > 1:
            return []
        # a word of the prose: `zero` for Vec.zero, `degenerate` for Shape.Degenerate
        for module in dict.fromkeys(self.used_modules):
            for candidate in dict.fromkeys((name, name.capitalize())):
                kinds_of = _WORD_KINDS_UPPER if candidate[:1].isupper() else _WORD_KINDS_LOWER
                for kind in kinds_of:
                    found = self.resolver.member(module, candidate, MATCHES[kind], 0)
                    if found:
                        return found
        return []

    # -- the modules in scope ---------------------------------------------------------

    def modules(self, full_file_tokens: int) -> Iterator[Candidate]:
        r = self.r
        if r.summary is None or r.source is None:
            return
        line = r.span[0] if r.span is not None else len(r.lines)
        here = location(r.source, r.summary, line)
        scope = scope_at(r.summary, line)
        opened = [
            i.path
            for i in r.summary.imports
            if not i.local and i.line < line and scope[: len(i.scope)] == i.scope
        ]
        named = self._mentions(line)
        chosen: list[InScope] = []
        other = sibling(r.path)
        if self.own is not None and other is not None and other in self.index.files:
            lines = self.read(other)
            small = lines is not None and estimate_tokens(lines) <= full_file_tokens
            half = InScope(
                UnitScope(self.own),
                OTHER_HALF,
                "the other half of this module" + (" (small: all of it)" if small else ""),
                INTERFACE,
                self._closeness(),
                SMALL_HALF if small else 0.0,
                frozenset(self._target_names()),
            )
            chosen.append(half)
        chosen += modules_in_scope(
            index=self.index,
            resolver=self.resolver,
            here=here,
            own=self.own,
            named=named,
            used=self.used_modules,
            opened=opened,
            words=self.words,
            beside=self.index.modules_named_beside(r.path.parent),
            local=frozenset(
                d.name
                for d in (*r.summary.definitions, *r.summary.local_modules)
                if d.kind is DefKind.MODULE and d.body is not None
            ),
        )
        here_uses: dict[str, dict[str, int]] = {}
        for (written, name), count in r.summary.qualified.items():
            here_uses.setdefault(written, {})[name] = count
        usage = self.index.usage()
        generation = self.index.names_generation
        scored: list[Scored] = []
        for module in chosen:
            unit = module.module.unit
            source = (
                self.index.files.get(other)
                if module.role == INTERFACE and other is not None
                else unit.mli or unit.ml
            )
            summary = self.index.summary(source.path) if source is not None else None
            if source is None or summary is None:
                continue
            found = file_entries(summary, partial(self.read, source.path))
            scored.append(
                score_entries(module, source.rel, found, usage, here_uses, self.words, generation)
            )
        # only the best are worth making candidates: the budget holds a few hundred
        densities = [
            [score / e.cost for score, e in zip(s.scores, s.entries, strict=True)] for s in scored
        ]
        flat = [d for ds in densities for d in ds]
        if len(flat) > MAX_MODULE_CANDIDATES:
            floor = heapq.nlargest(MAX_MODULE_CANDIDATES, flat)[-1]
        else:
            floor = -1.0
        best = sorted(
            ((d, k, i) for k, ds in enumerate(densities) for i, d in enumerate(ds) if d >= floor),
            reverse=True,
        )
        for _, k, i in best[:MAX_MODULE_CANDIDATES]:
            yield scored[k].candidate(i)

    def _mentions(self, line: int) -> Counter[str]:
        """Modules the file names: `M.` in its text (comments too: `(*$T CCInt.equal ... *)`
        tests) and module paths that stand alone (`module Int63 = Int63`, `open M`),
        each mention near the target counting NEAR_MENTION times."""
        out: Counter[str] = Counter()

        def mention(name: str, at: int) -> None:
            out[name] += NEAR_MENTION if abs(at - line) <= NEAR_MENTION_LINES else 1

        for n, text in enumerate(self.r.lines):
            if "." in text:
                for name in _MODULE_DOT.findall(text):
                    mention(name, n)
        if self.r.summary is not None:
            for chunk in self.r.summary.chunks:
                for ref in chunk.summary.references:
                    if ref.kind is RefKind.MODULE and len(ref.path) == 1:
                        mention(ref.path[0], chunk.start_line + ref.line)
            for imp in self.r.summary.imports:
                if len(imp.path) == 1:
                    mention(imp.path[0], imp.line)
        return out

    def _closeness(self) -> dict[str, float]:
        """How near the target each definition of this file is, by name."""
        r = self.r
        if r.summary is None or r.span is None:
            return {}
        start, end = r.span
        out: dict[str, float] = {}
        for d in r.summary.definitions:
            distance = 0 if start <= d.line <= end else min(abs(d.line - start), abs(d.line - end))
            out[d.name] = max(out.get(d.name, 0.0), closeness_at(distance))
        return out

    def _target_names(self) -> set[str]:
        r = self.r
        if r.summary is None or r.span is None:
            return set()
        return {d.name for d in r.summary.definitions if r.span[0] <= d.line <= r.span[1]}

    # -- the build and the callers ---------------------------------------------------

    def dune(self) -> Iterator[Candidate]:
        unit = self.own
        if unit is None or unit.stanza is None:
            return
        found = self.index.dune_text(unit.stanza)
        if found is None:
            return
        rel, lines = found
        deps = [s.name for s in self.resolver.dependencies(unit.stanza)]
        label = f"{unit.stanza.kind} {unit.stanza.name}" + (
            f" (workspace libraries it uses: {', '.join(deps)})" if deps else ""
        )
        numbers = range(unit.stanza.start_line, unit.stanza.end_line + 1)
        c = self.candidate(DUNE, rel, lines, numbers, DUNE_STANZA, "how the file is built", label)
        if c is not None:
            yield c

    def callers(self, limit: int) -> Iterator[Candidate]:
        r = self.r
        if r.summary is None or r.span is None or limit <= 0:
            return
        start, end = r.span
        names = {
            d.name
            for d in r.summary.definitions
            if start <= d.line <= end and d.kind not in (DefKind.CONSTRUCTOR, DefKind.FIELD)
        }
        # a caller elsewhere writes the module's name (`Shape.area`), or opens it; the
        # files that do neither are not read (`t`, `create` are used in every file)
        naming = self.index.naming(self.module_name) if self.module_name else set()
        count = 0
        for name in sorted(names):
            for user in self.index.users(name):
                mine = user.path == r.path
                if not mine and user.path not in naming:
                    continue
                summary = r.summary if mine else self.index.summary(user.path)
                if summary is None:
                    continue
                for ref in summary.references_to(name):
                    if mine and start <= ref.line <= end:
                        continue
                    # a use in this file is unqualified; elsewhere it goes through the
                    # module's name (`String.split`): near enough for context, and it
                    # spares resolving every use of a common name
                    through = ref.path[-2:-1] == (self.module_name,)
                    if not (len(ref.path) == 1 if mine else through):
                        continue
                    c = self.caller(user, summary, ref.line, name, count)
                    if c is not None:
                        yield c
                        count += 1
                        if count >= limit:
                            return

    def caller(
        self, user: SourceFile, summary: FileSummary, line: int, name: str, count: int
    ) -> Candidate | None:
        chunk = summary.chunk_at(line)
        lines = self.r.lines if user.path == self.r.path else self.read(user.path)
        if chunk is None or lines is None:
            return None
        head = min(
            (
                d.sig_end_line
                for d in summary.definitions
                if chunk.start_line <= d.line <= chunk.end_line
            ),
            default=chunk.start_line,
        )
        score = max(FAR, FIRST_CALLER - NEXT_CALLER * count)
        numbers = {*range(chunk.start_line, head + 1), line}
        return self.candidate(
            CALLER, user.rel, lines, numbers, score, f"calls `{name}`", f"uses `{name}`"
        )
