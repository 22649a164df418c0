"""Mine training examples from a snapshot timeline (`ocaml-ai-ls snapshot mine`).

The timeline is the store's snapshots, oldest first, each GREEN, RED or
UNKNOWN. UNKNOWN snapshots (no compiler, a timeout) are skipped when looking
for episodes: they neither open nor close one, nor break one, so "the next
snapshot" below means the next GREEN or RED one. The files of the steps are
still compared end to end, so what changed during an UNKNOWN stretch is part
of the change.

Examples, in timeline order (an episode's edit before its repair):

- *edit*: a GREEN snapshot G1, then one or more RED ones, then the next GREEN
  G2. The change is the net one, G1 → G2. GREEN → GREEN directly (a refactor
  that never broke the build) is no episode.
- *repair*: every RED → GREEN step (R, then the next known snapshot G): the
  change R → G, with R's errors. A RED run at the start of the timeline (no
  GREEN before it) gives a repair and no edit.

Each change is kept only when it is not empty (the same files at both ends:
an edit that was reverted), changes at most `max_files` files and at most
`max_changed_lines` lines (added plus removed lines of the diff), and every
changed file is UTF-8 text.

Fields of an example (one JSON line, keys in this order):

- `id`: sha256 of (kind, diff, files_before), first 16 hex digits: stable.
- `kind`: "edit" or "repair".
- `episode`: the id of the snapshot that opens the episode: G1 for an edit
  and for the repair that closes it (even when the edit itself was dropped),
  else the first RED of the run for a standalone repair.
- `files_before`: {path: text} of the changed files before the change (a
  created file is absent).
- `context`: the slice the context engine builds for the BEFORE state, at the
  first changed line of the first changed `.ml` file that exists before (else
  `.mli`), rendered by `prompt.render_context` exactly as the model sees it,
  with the example's instruction for name look-up; "" when there is no such
  file or the slice fails (counted in the report). The before tree is written
  to a temporary directory and indexed per example (summaries are cached by
  content across examples): about the cost of opening the workspace once.
- `instruction`, `instruction_source`: written by the model (`describe.py`),
  "model"; without one, "" and "none".
- `diff`: unified diff before → after of the changed files, paths sorted,
  `--- a/p` / `+++ b/p` (`/dev/null` for a created or deleted file), 3 lines
  of context, LF line ends, git's "\\ No newline at end of file" marker.
- `errors`: a repair's RED errors as objects (`CheckError`'s fields); [] for
  an edit.
- `time`: the closing snapshot's time (G2, or G), ISO 8601 UTC to the second
  (`2024-05-01T12:00:00Z`).
- `files_after`: {path: text} of the changed files after the change (null: the
  change deletes the file), so the change is known without applying `diff`.
- `before`, `after`: the ids of the snapshots the change goes from and to (in
  the store of the workspace), so the whole "before" tree can be read again.
- `status_before`, `status_after`: their build states ("green", "red").

The last five keys came later (for `dataset export`); the first ten are as they were.

Near-duplicates: a change's *changed lines* are the diff's added and removed
lines, each with its sign and whitespace collapsed (paths and context lines
left out). An example is dropped when its changed lines, in order, equal
those of one already kept (of any kind), or when the set of its changed lines
has a Jaccard similarity of at least `NEAR_DUPLICATE` with that of one already
kept of the same kind. Earlier examples win. The dedup runs before the
split, so a near-duplicate of a training example never reaches the held-out
file either, and before the model and the context engine, which only see the
examples kept. Comparing against every kept example is quadratic; fine for
the thousands of examples a day makes.

Split: by episode, never by example, so the held-out file never shares an
episode with the training file: an example is held out when
`int(sha256(episode)[:8], 16) / 2**32 < heldout_share`.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from ..config import ContextSettings
from ..context.index import WorkspaceIndex
from ..context.slicer import build_context
from ..context.summary import ChunkCache
from ..documents import DocumentStore
from ..edits.workspace_edit import split_keepends
from ..positions import encode
from ..prompt import render_context
from ..providers.http import ManagedProvider
from ..workspace import Workspace
from .describe import Describer
from .store import GREEN, RED, Snapshot

log = logging.getLogger(__name__)

EDIT, REPAIR = "edit", "repair"
#: Jaccard similarity of changed-line sets from which two examples of a kind are one.
NEAR_DUPLICATE = 0.9
_NO_NEWLINE = "\\ No newline at end of file\n"

Files = Mapping[str, bytes]


class Timeline(Protocol):
    """What the miner reads: `SnapshotStore` is one, `MemoryTimeline` another."""

    def log(self) -> list[Snapshot]: ...

    def files(self, snapshot_id: str) -> Mapping[str, bytes]: ...


class MemoryTimeline:
    """A timeline held in memory: (snapshot, files) pairs, oldest first."""

    def __init__(self, states: Iterable[tuple[Snapshot, Files]]) -> None:
        self._states = list(states)
        self._files = {s.id: f for s, f in self._states}

    def log(self) -> list[Snapshot]:
        return [s for s, _ in self._states]

    def files(self, snapshot_id: str) -> Mapping[str, bytes]:
        return self._files[snapshot_id]


@dataclass(frozen=True)
class MineOptions:
    max_changed_lines: int = 100
    max_files: int = 3
    heldout_share: float = 0.1
    #: How the context is sliced (budget and the rest); None: no context at all.
    context: ContextSettings | None = field(default_factory=ContextSettings)


@dataclass(frozen=True)
class Step:
    """An example to be: a change from one snapshot to another."""

    kind: str
    episode: str
    before: Snapshot
    after: Snapshot


def steps(snapshots: Sequence[Snapshot]) -> list[Step]:
    """The edit episodes and repair steps of a timeline (see the module docstring)."""
    out: list[Step] = []
    previous: Snapshot | None = None
    opener: Snapshot | None = None  # the GREEN before the current RED run, if any
    first_red: Snapshot | None = None
    for snap in snapshots:
        status = snap.state.status
        if status == RED:
            if previous is None or previous.state.status == GREEN:
                opener, first_red = previous, snap
        elif status == GREEN:
            if previous is not None and previous.state.status == RED:
                assert first_red is not None
                episode = (opener or first_red).id
                if opener is not None:
                    out.append(Step(EDIT, episode, opener, snap))
                out.append(Step(REPAIR, episode, previous, snap))
        else:
            continue  # UNKNOWN: not known, so no boundary
        previous = snap
    return out


@dataclass(frozen=True)
class Change:
    """The net change between two trees, restricted to the files it touches."""

    paths: tuple[str, ...]
    files_before: dict[str, str]
    diff: str
    #: Added plus removed lines.
    changed_lines: int
    #: Signed, whitespace-collapsed changed lines, in diff order.
    normalized: tuple[str, ...]
    #: (path, 1-based line) of the first change in each file existing before.
    first_lines: dict[str, int]
    #: The changed files after the change (None: deleted).
    files_after: dict[str, str | None] = field(default_factory=dict)


def _lines(text: str) -> list[str]:
    """Lines ending in LF; a last line without an end carries git's marker."""
    lines = [line.rstrip("\r\n") + "\n" for line in split_keepends(text)]
    if text and not text.endswith(("\n", "\r")):
        lines[-1] += _NO_NEWLINE
    return lines


def _normal(line: str) -> str:
    return line[0] + " ".join(line[1:].replace(_NO_NEWLINE, "").split())


def changed_paths(before: Files, after: Files) -> list[str]:
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def diff_trees(before: Files, after: Files, paths: Sequence[str]) -> Change | None:
    """The change before → after over `paths`; None when a file is not UTF-8 text."""
    texts_before: dict[str, str] = {}
    texts_after: dict[str, str | None] = {}
    out: list[str] = []
    normalized: list[str] = []
    first_lines: dict[str, int] = {}
    count = 0
    for path in paths:
        old_bytes, new_bytes = before.get(path), after.get(path)
        try:
            old = old_bytes.decode("utf-8") if old_bytes is not None else None
            new = new_bytes.decode("utf-8") if new_bytes is not None else None
        except UnicodeDecodeError:
            return None
        texts_after[path] = new
        a = _lines(old) if old is not None else []
        b = _lines(new) if new is not None else []
        src = f"a/{path}" if old is not None else "/dev/null"
        dst = f"b/{path}" if new is not None else "/dev/null"
        hunks = list(difflib.unified_diff(a, b, src, dst, n=3))
        body = [line for line in hunks[2:] if line[:1] in "+-"]
        out.extend(hunks)
        count += len(body)
        normalized.extend(_normal(line) for line in body)
        if old is not None:
            texts_before[path] = old
            opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
            first = next((i1 for tag, i1, *_ in opcodes if tag != "equal"), 0)
            first_lines[path] = min(first + 1, max(len(a), 1))
    return Change(
        tuple(paths),
        texts_before,
        "".join(out),
        count,
        tuple(normalized),
        first_lines,
        texts_after,
    )


@dataclass
class Example:
    """One mined example; `to_json` is its line in the JSONL file."""

    kind: str
    episode: str
    files_before: dict[str, str]
    diff: str
    errors: list[dict[str, Any]]
    time: str
    context: str = ""
    instruction: str = ""
    instruction_source: str = "none"
    files_after: dict[str, str | None] = field(default_factory=dict)
    before_id: str = ""
    after_id: str = ""
    status_before: str = ""
    status_after: str = ""
    #: Not written: what the context and the dedup need.
    change: Change | None = None

    @property
    def id(self) -> str:
        return example_id(self.kind, self.diff, self.files_before)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "episode": self.episode,
            "files_before": self.files_before,
            "context": self.context,
            "instruction": self.instruction,
            "instruction_source": self.instruction_source,
            "diff": self.diff,
            "errors": self.errors,
            "time": self.time,
            "files_after": self.files_after,
            "before": self.before_id,
            "after": self.after_id,
            "status_before": self.status_before,
            "status_after": self.status_after,
        }


def example_id(kind: str, diff: str, files_before: Mapping[str, str]) -> str:
    data = json.dumps([kind, diff, sorted(files_before.items())], ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]


def iso_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_heldout(episode: str, share: float) -> bool:
    """Whether an episode (all its examples) goes to the held-out file."""
    digest = hashlib.sha256(episode.encode("utf-8")).hexdigest()
    return int(digest[:8], 16) / 2**32 < share


class Dedup:
    """Near-duplicate filter over the examples kept so far (see the module docstring)."""

    def __init__(self, threshold: float = NEAR_DUPLICATE) -> None:
        self.threshold = threshold
        self._exact: set[tuple[str, ...]] = set()
        self._sets: dict[str, list[frozenset[str]]] = {}

    def duplicate(self, kind: str, normalized: tuple[str, ...]) -> bool:
        if normalized in self._exact:
            return True
        lines = frozenset(normalized)
        for kept in self._sets.get(kind, []):
            union = len(lines | kept)
            if union and len(lines & kept) / union >= self.threshold:
                return True
        return False

    def keep(self, kind: str, normalized: tuple[str, ...]) -> None:
        self._exact.add(normalized)
        self._sets.setdefault(kind, []).append(frozenset(normalized))


@dataclass
class MineReport:
    """What happened to the candidate examples, for the command's summary."""

    snapshots: int = 0
    found: dict[str, int] = field(default_factory=lambda: {EDIT: 0, REPAIR: 0})
    kept: dict[str, int] = field(default_factory=lambda: {EDIT: 0, REPAIR: 0})
    empty: int = 0
    too_big: int = 0
    not_text: int = 0
    duplicates: int = 0
    no_context: int = 0
    instructions: int = 0
    training: int = 0
    heldout: int = 0

    def summary(self) -> str:
        return (
            f"{self.snapshots} snapshots: {self.found[EDIT]} edit episodes and "
            f"{self.found[REPAIR]} repair steps; kept {self.kept[EDIT]} edits and "
            f"{self.kept[REPAIR]} repairs ({self.training} training, {self.heldout} held out); "
            f"dropped {self.empty} empty, {self.too_big} too big, {self.not_text} not text, "
            f"{self.duplicates} near-duplicates; {self.instructions} instructions by the "
            f"model; {self.no_context} without context"
        )


class _Loader:
    """Files of snapshots, the last few kept (steps go forward in time)."""

    def __init__(self, timeline: Timeline, keep: int = 4) -> None:
        self.timeline = timeline
        self.keep = keep
        self._cache: dict[str, Files] = {}

    def __call__(self, snapshot_id: str) -> Files:
        files = self._cache.pop(snapshot_id, None)
        if files is None:
            files = self.timeline.files(snapshot_id)
        self._cache[snapshot_id] = files
        while len(self._cache) > self.keep:
            del self._cache[next(iter(self._cache))]
        return files


def collect(
    timeline: Timeline, options: MineOptions, report: MineReport | None = None
) -> tuple[list[Example], MineReport]:
    """The examples of a timeline that pass the limits and the dedup (no context yet)."""
    report = report or MineReport()
    snapshots = timeline.log()
    report.snapshots = len(snapshots)
    load = _Loader(timeline)
    dedup = Dedup()
    examples: list[Example] = []
    for step in steps(snapshots):
        report.found[step.kind] += 1
        before, after = load(step.before.id), load(step.after.id)
        paths = changed_paths(before, after)
        if not paths:
            report.empty += 1
            continue
        if len(paths) > options.max_files:
            report.too_big += 1
            continue
        change = diff_trees(before, after, paths)
        if change is None:
            report.not_text += 1
            continue
        if change.changed_lines > options.max_changed_lines:
            report.too_big += 1
            continue
        if dedup.duplicate(step.kind, change.normalized):
            report.duplicates += 1
            continue
        dedup.keep(step.kind, change.normalized)
        errors = [asdict(e) for e in step.before.state.errors] if step.kind == REPAIR else []
        examples.append(
            Example(
                kind=step.kind,
                episode=step.episode,
                files_before=change.files_before,
                diff=change.diff,
                errors=errors,
                time=iso_time(step.after.time),
                files_after=change.files_after,
                before_id=step.before.id,
                after_id=step.after.id,
                status_before=step.before.state.status,
                status_after=step.after.state.status,
                change=change,
            )
        )
        report.kept[step.kind] += 1
    return examples, report


def _error_line(error: Mapping[str, Any]) -> str:
    where = f"{error.get('path')}:{error.get('line')}:{error.get('column')}: "
    return (where if error.get("path") else "") + str(error.get("message", ""))


async def write_instructions(examples: Sequence[Example], describer: Describer) -> int:
    """Ask the model for every example's instruction, one at a time; how many it wrote."""
    written = 0
    for ex in examples:
        text = await describer.instruction(ex.diff, [_error_line(e) for e in ex.errors])
        if text:
            ex.instruction, ex.instruction_source = text, "model"
            written += 1
        else:
            ex.instruction, ex.instruction_source = "", "none"
    return written


def context_target(change: Change) -> tuple[str, int] | None:
    """Where the context is sliced: the first changed `.ml` existing before, else `.mli`."""
    for suffix in (".ml", ".mli"):
        for path in change.paths:
            if path.endswith(suffix) and path in change.first_lines:
                return path, change.first_lines[path]
    return None


def _safe(rel: str) -> bool:
    p = PurePosixPath(rel)
    return bool(rel) and not p.is_absolute() and ".." not in p.parts


def slice_before(
    files: Files,
    rel: str,
    line: int,
    settings: ContextSettings,
    instruction: str = "",
    cache: ChunkCache | None = None,
) -> str:
    """The rendered context of `rel` at 1-based `line` in a workspace made of `files`."""
    with tempfile.TemporaryDirectory(prefix="ocaml-ai-mine-") as tmp:
        root = Path(tmp)
        for path, data in files.items():
            if not _safe(path):
                continue
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        documents = DocumentStore()
        index = WorkspaceIndex(root, documents, cache)
        index.scan()
        ws = Workspace(root, documents)
        current = ws.read(root / rel)
        if current is None:
            return ""
        offset = sum(len(encode(s)) for s in split_keepends(current.text)[: line - 1])
        context = build_context(
            ws,
            current,
            current.text,
            (offset, offset),
            instruction=instruction,
            budget=settings.budget_tokens,
            full_file_tokens=settings.full_file_tokens,
            max_callers=settings.max_callers,
            index=index,
        )
        return render_context(context)


def add_contexts(
    examples: Sequence[Example], timeline: Timeline, settings: ContextSettings, report: MineReport
) -> None:
    """Fill in every example's context (see the module docstring); failures give ""."""
    load = _Loader(timeline)
    cache = ChunkCache()
    for ex in examples:
        target = context_target(ex.change) if ex.change is not None else None
        if target is None:
            report.no_context += 1
            continue
        try:
            ex.context = slice_before(load(ex.before_id), *target, settings, ex.instruction, cache)
        except Exception as exc:  # a slice is a nicety: never lose the example for it
            log.warning("mine: no context for %s at %s:%d: %s", ex.id, *target, exc)
            ex.context = ""
        if not ex.context:
            report.no_context += 1


@dataclass
class MineResult:
    training: list[Example]
    heldout: list[Example]
    report: MineReport


async def _instruct(examples: Sequence[Example], make: Callable[[], ManagedProvider]) -> int:
    provider = make()
    try:
        return await write_instructions(examples, Describer(provider))
    finally:
        await provider.aclose()


def mine(
    timeline: Timeline,
    options: MineOptions,
    make_provider: Callable[[], ManagedProvider] | None = None,
) -> MineResult:
    """Examples of a timeline, with instructions (when a model is given) and contexts,
    split into training and held-out by episode."""
    examples, report = collect(timeline, options)
    if make_provider is not None and examples:
        report.instructions = asyncio.run(_instruct(examples, make_provider))
    if options.context is not None:
        add_contexts(examples, timeline, options.context, report)
    else:
        report.no_context = len(examples)
    training = [e for e in examples if not is_heldout(e.episode, options.heldout_share)]
    heldout = [e for e in examples if is_heldout(e.episode, options.heldout_share)]
    report.training, report.heldout = len(training), len(heldout)
    return MineResult(training, heldout, report)


def write_jsonl(path: Path, examples: Iterable[Example]) -> None:
    """One JSON object per line, written to a temporary file and renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            for ex in examples:
                fh.write(json.dumps(ex.to_json(), ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
