"""What the model is shown for one request: ranked pieces packed into a token budget.

Ranks, most needed first:

1. the target item (the top-level definition around the selection);
2. the rest of the current file (whole when small, else an outline:
   signatures and types, bodies left out);
3. the other half of the module (`.mli` of an `.ml`, outline of the `.ml`);
4. definitions of the names the target uses, resolved like the compiler
   does (see `resolve`): signatures of values, whole types, the module
   definitions a qualified name goes through; then names the instruction
   mentions that resolve at the target;
5. the types of the constructors and fields the target uses, and of the
   types in the signatures of rank 4; then outlines of the modules the
   target uses or the file opens (what else they offer);
6. the dune stanza of the file's library or executable;
7. callers of the target in the workspace.

Pieces are packed greedily by rank; one that does not fit is dropped whole,
never cut in the middle of a definition. Every piece keeps its file and line
numbers, so the model can aim a diff at it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from ..positions import EOL_STR, encode
from ..workspace import FileText, Workspace
from .index import SourceFile, WorkspaceIndex
from .items import enclosing_item
from .parsing import SourceKind, parse
from .resolve import Found, Location, Module, Resolver, UnitScope
from .summary import FULL_KINDS, MATCHES, Definition, DefKind, FileSummary, RefKind, summarize

#: Ranks, and what each means to the model.
TARGET, FILE, INTERFACE, DEFINITION, TYPE, DUNE, CALLER = 1, 2, 3, 4, 5, 6, 7
ROLES = {
    TARGET: "the target",
    FILE: "the rest of the file being edited",
    INTERFACE: "the other half of the module",
    DEFINITION: "definitions the target uses",
    TYPE: "types of what the target uses, and what the modules it uses offer",
    DUNE: "the dune stanza",
    CALLER: "callers of the target",
}
#: At most this many definitions are taken for one use (an ambiguous name).
MAX_PER_USE = 3
#: A used module's outline larger than this is left out (it would crowd out the rest).
MAX_INTERFACE_TOKENS = 1200
#: Identifiers in an instruction, maybe qualified (`IS.of_list`).
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_']*(?:\.[A-Za-z_][A-Za-z0-9_']*)*")
#: What a word of the instruction may name, tried in this order.
_WORD_KINDS_UPPER = (RefKind.CONSTRUCTOR, RefKind.MODULE)
_WORD_KINDS_LOWER = (RefKind.VALUE, RefKind.TYPE, RefKind.FIELD)
#: English words too common to look up as names (data, one per line).
STOPWORDS = frozenset(
    line.strip()
    for line in (files(__package__) / "stopwords.txt").read_text("utf-8").splitlines()
    if line.strip() and not line.startswith("#")
)
_MODULE_SCOPES = frozenset({DefKind.MODULE, DefKind.FUNCTOR, DefKind.MODULE_TYPE})


def estimate_tokens(lines: Iterable[str]) -> int:
    """Tokens a numbered excerpt costs: about 4 bytes per token, plus the `  12| ` prefix.

    Deliberately simple and stable (no tokenizer download); it errs high for
    code, which is what a budget wants.
    """
    return sum(len(encode(line)) + 7 for line in lines) // 4 + 1


@dataclass(frozen=True)
class Piece:
    """Some lines of one file (1-based numbers, maybe with gaps) and why they are shown."""

    rank: int
    rel: str
    numbers: tuple[int, ...]
    texts: tuple[str, ...]
    label: str

    @property
    def tokens(self) -> int:
        return estimate_tokens(self.texts)

    @property
    def first_line(self) -> int:
        return self.numbers[0] if self.numbers else 0

    @property
    def last_line(self) -> int:
        return self.numbers[-1] if self.numbers else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "role": ROLES[self.rank],
            "label": self.label,
            "path": self.rel,
            "startLine": self.first_line,
            "endLine": self.last_line,
            "lines": list(self.numbers),
            "text": "\n".join(self.texts),
            "tokens": self.tokens,
        }


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
    pieces: tuple[Piece, ...]
    dropped: tuple[Piece, ...] = ()
    budget: int = 0
    total_lines: dict[str, int] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        """What the pieces cost as `pack` counted them: a line shown twice, once."""
        shown: set[tuple[str, int]] = set()
        total = 0
        for p in self.pieces:
            new = [t for n, t in zip(p.numbers, p.texts, strict=True) if (p.rel, n) not in shown]
            shown.update((p.rel, n) for n in p.numbers)
            total += estimate_tokens(new) if new else 0
        return total

    @property
    def files(self) -> tuple[str, ...]:
        """Relative paths of every file shown, so a bare name can be resolved."""
        return tuple(dict.fromkeys(p.rel for p in self.pieces))

    def to_json(self) -> dict[str, Any]:
        target = self.target
        return {
            "path": self.rel,
            "target": None
            if target is None
            else {
                "path": target.rel,
                "startLine": target.start_line,
                "endLine": target.end_line,
                "kind": target.kind,
                "name": target.name,
            },
            "budget": self.budget,
            "tokens": self.tokens,
            "pieces": [p.to_json() for p in self.pieces],
            "dropped": [p.to_json() for p in self.dropped],
        }


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


class _Texts:
    """File lines for pieces: open buffers over disk, read once per request."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._lines: dict[Path, list[str] | None] = {}

    def lines(self, path: Path) -> list[str] | None:
        if path not in self._lines:
            found = self.ws.read(path)
            self._lines[path] = split_lines(found.text) if found is not None else None
        return self._lines[path]


class _Slicer:
    def __init__(
        self,
        ws: Workspace,
        index: WorkspaceIndex,
        current: FileText,
        text: str,
        selection: tuple[int, int] | None,
    ) -> None:
        self.ws = ws
        self.index = index
        self.current = current
        self.texts = _Texts(ws)
        self.lines = split_lines(text)
        self.texts._lines[current.path] = self.lines
        self.kind = SourceKind.of(current.path)
        self.resolver = Resolver(index)
        self.pieces: list[Piece] = []
        self.target: Target | None = None
        self.summary: FileSummary | None = None
        self.source: SourceFile | None = None
        self.span: tuple[int, int] | None = None  # target lines, 0-based inclusive
        self.used_modules: list[Module] = []
        self.seen: set[tuple[str, int]] = set()  # definitions already made pieces
        if self.kind is None:
            return
        data = encode(text)
        tree = parse(data, self.kind)
        self.summary = summarize(tree, data, self.kind, index.cache)
        # the request's own text (instruction comment removed) stands for the file
        self.source = SourceFile(current.path, current.rel, self.kind, self.summary)
        if selection is not None:
            item = enclosing_item(tree, *selection)
            if item is not None:
                self.span = (item.start_line, item.end_line)
                self.target = Target(
                    current.rel,
                    item.start_line + 1,
                    item.end_line + 1,
                    item.kind,
                    item.name,
                    "\n".join(self.lines[item.start_line : item.end_line + 1]),
                )

    # -- pieces ---------------------------------------------------------------

    def piece(
        self, rank: int, rel: str, lines: list[str], numbers: Iterable[int], label: str
    ) -> None:
        """Add lines (0-based numbers) of a file as a piece."""
        kept = [n for n in numbers if 0 <= n < len(lines)]
        if kept:
            self.pieces.append(
                Piece(rank, rel, tuple(n + 1 for n in kept), tuple(lines[n] for n in kept), label)
            )

    def current_file(self, full_file_tokens: int) -> None:
        rel = self.current.rel
        everything = range(len(self.lines))
        if self.span is None:
            if self.summary is None or estimate_tokens(self.lines) <= full_file_tokens:
                self.piece(TARGET, rel, self.lines, everything, "the file being edited")
            else:
                self.piece(TARGET, rel, self.lines, outline(self.summary), "outline of the file")
            return
        start, end = self.span
        name = self.target.name if self.target and self.target.name else "the target"
        self.piece(TARGET, rel, self.lines, range(start, end + 1), f"`{name}`")
        rest = (
            everything
            if self.summary is None or estimate_tokens(self.lines) <= full_file_tokens
            else outline(self.summary)
        )
        label = "the rest of the file" if rest is everything else "outline of the rest of the file"
        self.piece(FILE, rel, self.lines, [n for n in rest if not start <= n <= end], label)

    def other_half(self, full_file_tokens: int) -> None:
        other = sibling(self.current.path)
        if other is None:
            return
        lines = self.texts.lines(other)
        if lines is None:
            return
        rel = self.index.rel(other)
        summary = self.index.summary(other)
        if estimate_tokens(lines) <= full_file_tokens or summary is None:
            what = "interface" if other.suffix == ".mli" else "implementation"
            self.piece(INTERFACE, rel, lines, range(len(lines)), f"the {what} of this module")
        else:
            self.piece(INTERFACE, rel, lines, outline(summary), "outline of the other half")

    def uses(self) -> None:
        """Definitions (rank 4) and types (rank 5) of what the target uses."""
        if self.summary is None or self.source is None:
            return
        start, end = self.span if self.span is not None else (0, len(self.lines) - 1)
        bound: set[str] = set()
        for chunk in self.summary.chunks:
            if chunk.start_line <= end and start <= chunk.end_line:
                bound |= chunk.summary.bound
        signatures: list[Found] = []
        for imp in self.summary.imports:  # `include M` / `open M` inside the target
            if start <= imp.line <= end and not imp.local:
                loc = location(self.source, self.summary, imp.line)
                self.used_modules.extend(self.resolver.module(imp.path, loc, 0))
                for f in self.resolver.module_definitions(imp.path, loc):
                    if self._new(f):
                        self.definition(DEFINITION, f, ".".join(imp.path))
        for ref in self.summary.references_in(start, end):
            if len(ref.path) == 1 and ref.kind is RefKind.VALUE and ref.path[0] in bound:
                continue
            loc = location(self.source, self.summary, ref.line)
            used_as = ".".join(ref.path)
            found = [(f, used_as) for f in self.resolver.resolve(ref.path, ref.kind, loc)]
            found = found[:MAX_PER_USE]
            modules = ref.path if ref.kind is RefKind.MODULE else ref.path[:-1]
            if modules:
                through = ".".join(modules)
                found += [(f, through) for f in self.resolver.module_definitions(modules, loc)]
                self.used_modules.extend(self.resolver.module(modules, loc, 0))
            for f, label in found:
                if not self._new(f):
                    continue
                rank = TYPE if ref.kind in (RefKind.CONSTRUCTOR, RefKind.FIELD) else DEFINITION
                self.definition(rank, f, label)
                if f.definition.kind not in FULL_KINDS:
                    signatures.append(f)
        for f in signatures:  # the types a used function takes and returns
            self.signature_types(f)

    def definition(self, rank: int, f: Found, used_as: str, why: str = "") -> None:
        d = f.definition
        lines = self.texts.lines(f.file.path)
        if lines is None:
            return
        last = d.end_line if d.kind in FULL_KINDS else d.sig_end_line
        what = f"{d.owner}.{d.name}" if d.owner else d.name
        label = f"`{used_as}`: {d.kind} {what}" + (f" ({why})" if why else "")
        self.piece(rank, f.file.rel, lines, range(d.start_line, last + 1), label)

    def _new(self, f: Found) -> bool:
        """Whether a definition still needs a piece: not the target's own, not one
        already given (it is marked given)."""
        d = f.definition
        start, end = self.span if self.span is not None else (0, len(self.lines) - 1)
        if f.file.path == self.current.path and start <= d.line <= end:
            return False
        key = (f.file.rel, d.line)
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def signature_types(self, f: Found) -> None:
        summary = (
            self.index.summary(f.file.path) if f.file.path != self.current.path else self.summary
        )
        if summary is None:
            return
        d = f.definition
        for ref in summary.references_in(d.start_line, d.sig_end_line):
            if ref.kind is not RefKind.TYPE:
                continue
            loc = location(f.file, summary, ref.line)
            for t in self.resolver.resolve(ref.path, ref.kind, loc)[:MAX_PER_USE]:
                if self._new(t):
                    self.definition(TYPE, t, ".".join(ref.path))

    def named(self, instruction: str) -> None:
        """Definitions the instruction names (`IS.of_list`, `Debug`, `zero`) that are in
        scope at the target or members of a module the target uses."""
        if self.summary is None or self.source is None or not instruction:
            return
        start = self.span[0] if self.span is not None else 0
        loc = location(self.source, self.summary, start)
        for word in dict.fromkeys(_IDENTIFIER.findall(instruction)):
            path = tuple(word.split("."))
            if len(path) == 1 and (len(word) < 3 or word.lower() in STOPWORDS):
                continue
            found = self._lookup(path, loc)
            if not found and len(path) == 1 and word.endswith("s"):  # "removes": remove
                found = self._lookup((word[:-1],), loc)
            for f in found[:MAX_PER_USE]:
                if self._new(f):
                    self.definition(DEFINITION, f, word, "named in the instruction")

    def _lookup(self, path: tuple[str, ...], loc: Location) -> list[Found]:
        assert self.summary is not None
        name = path[-1]
        kinds = _WORD_KINDS_UPPER if name[:1].isupper() else _WORD_KINDS_LOWER
        for kind in kinds:
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

    def interfaces(self) -> None:
        """Outlines of the modules the target uses or the file opens (rank 5, last):
        what else those modules offer, for edits that need more than is used now."""
        if self.summary is None or self.source is None:
            return
        start = self.span[0] if self.span is not None else len(self.lines)
        here = scope_at(self.summary, start)
        for imp in self.summary.imports:
            if not imp.local and imp.line < start and here[: len(imp.scope)] == imp.scope:
                loc = Location(self.source, imp.line, imp.scope)
                self.used_modules.extend(self.resolver.module(imp.path, loc, 0))
        own = self.index.unit_of(self.current.path)
        for module in dict.fromkeys(self.used_modules):
            if not isinstance(module, UnitScope) or module.unit is own:
                continue
            self.interface(module, 0)

    def interface(self, module: UnitScope, depth: int) -> None:
        """One module's outline; the modules it includes follow, one level deep."""
        for source in module.unit.files():
            summary = self.index.summary(source.path)
            lines = self.texts.lines(source.path)
            if summary is None or lines is None:
                continue
            keep: set[int] = set()
            for d in summary.definitions:
                if d.scope != module.scope or d.kind in (DefKind.CONSTRUCTOR, DefKind.FIELD):
                    continue
                last = d.end_line if d.kind in FULL_KINDS else d.sig_end_line
                keep.update(range(d.start_line, last + 1))
            if not keep:
                continue
            numbers = sorted(keep)
            if estimate_tokens(lines[n] for n in numbers if n < len(lines)) > MAX_INTERFACE_TOKENS:
                return
            name = ".".join((source.module, *module.scope))
            self.piece(TYPE, source.rel, lines, numbers, f"what module {name} offers")
            if depth == 0:
                for imp in summary.imports:
                    if imp.include and not imp.local and imp.scope == module.scope:
                        at = Location(source, imp.line, imp.scope)
                        for inner in self.resolver.module(imp.path, at, 1):
                            if isinstance(inner, UnitScope):
                                self.interface(inner, depth + 1)
            return

    def dune(self) -> None:
        unit = self.index.unit_of(self.current.path)
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
        self.piece(DUNE, rel, lines, range(unit.stanza.start_line, unit.stanza.end_line + 1), label)

    def callers(self, limit: int) -> None:
        if self.summary is None or self.span is None or limit <= 0:
            return
        start, end = self.span
        names = {
            d.name
            for d in self.summary.definitions
            if start <= d.line <= end and d.kind not in (DefKind.CONSTRUCTOR, DefKind.FIELD)
        }
        module = self.current.path.with_suffix("")
        count = 0
        for name in sorted(names):
            for user in self.index.users(name):
                summary = (
                    self.summary
                    if user.path == self.current.path
                    else self.index.summary(user.path)
                )
                source = self.source if user.path == self.current.path else user
                if summary is None or source is None:
                    continue
                for ref in summary.references_to(name):
                    if user.path == self.current.path and start <= ref.line <= end:
                        continue
                    loc = location(source, summary, ref.line)
                    hits = self.resolver.resolve(ref.path, ref.kind, loc)
                    if not any(
                        h.file.path.with_suffix("") == module and h.definition.name == name
                        for h in hits
                    ):
                        continue
                    if self.caller(user, summary, ref.line, name):
                        count += 1
                        if count >= limit:
                            return

    def caller(self, user: SourceFile, summary: FileSummary, line: int, name: str) -> bool:
        chunk = summary.chunk_at(line)
        lines = self.texts.lines(user.path)
        if chunk is None or lines is None:
            return False
        head = min(
            (
                d.sig_end_line
                for d in summary.definitions
                if chunk.start_line <= d.line <= chunk.end_line
            ),
            default=chunk.start_line,
        )
        numbers = sorted({*range(chunk.start_line, head + 1), line})
        self.piece(CALLER, user.rel, lines, numbers, f"uses `{name}`")
        return True


def pack(pieces: Sequence[Piece], budget: int) -> tuple[list[Piece], list[Piece]]:
    """Pieces by rank that fit the budget (the target always does); the rest dropped.

    Lines already shown by an earlier piece cost nothing again; a piece with
    nothing new is left out altogether.
    """
    shown: dict[str, set[int]] = {}
    kept: list[Piece] = []
    dropped: list[Piece] = []
    used = 0
    for piece in sorted(pieces, key=lambda p: p.rank):  # stable: order within a rank kept
        seen = shown.setdefault(piece.rel, set())
        new = [(n, t) for n, t in zip(piece.numbers, piece.texts, strict=True) if n not in seen]
        if not new:
            continue
        cost = estimate_tokens(t for _, t in new)
        if piece.rank != TARGET and used + cost > budget:
            dropped.append(piece)
            continue
        used += cost
        seen.update(n for n, _ in new)
        kept.append(piece)
    return kept, dropped


def build_context(
    ws: Workspace,
    current: FileText,
    text: str,
    selection: tuple[int, int] | None,
    *,
    instruction: str = "",
    budget: int = 6000,
    full_file_tokens: int = 1500,
    max_callers: int = 10,
    index: WorkspaceIndex | None = None,
) -> Context:
    """The slice for a request on `current` whose text (maybe cleaned) is `text`.

    `selection` holds UTF-8 byte offsets into `text`; None means the whole file.
    """
    index = index or ws.index or WorkspaceIndex(ws.root, ws.documents)
    slicer = _Slicer(ws, index, current, text, selection)
    slicer.current_file(full_file_tokens)
    if slicer.kind is not None:
        slicer.other_half(full_file_tokens)
        slicer.uses()
        slicer.named(instruction)
        slicer.interfaces()
        slicer.dune()
        slicer.callers(max_callers)
    kept, dropped = pack(slicer.pieces, budget)
    totals = {current.rel: len(slicer.lines)}
    for piece in kept:
        if piece.rel not in totals:
            path = ws.root / piece.rel
            lines = slicer.texts.lines(path)
            totals[piece.rel] = len(lines) if lines is not None else piece.last_line
    return Context(current.rel, slicer.target, tuple(kept), tuple(dropped), budget, totals)
