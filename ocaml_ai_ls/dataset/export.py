"""Episodes → rows in TRL's conversational formats (`ocaml-ai-ls dataset export`).

A row is `{"messages": [system, user, assistant], "provenance": {...}}` or, with
`prompt-completion`, `{"prompt": [system, user], "completion": [assistant],
"provenance": {...}}`. The system and user messages are what the pipeline sends the
model for the episode's request (`pipeline.request_messages` on a working copy of
the "before" state: the same prompt builder and the same context slice). The
assistant message is the episode's change written in the strategy's edit format
(`edits/write.py`).

Round trip: the assistant message is parsed and applied by the pipeline's own
parser and applier (`parse_answer`, `apply_parsed`) to the before state; a row is
written only when that gives the "after" texts byte for byte and changes nothing
else. The others are counted by reason, never written.

`provenance` is a column trainers ignore (TRL passes it to reward functions): the
episode's source, id, kind, snapshots and build states, the changed paths, and what
a reward needs to rebuild the before state: `project` (a directory) and `files`
(`[{path, text}]` overrides of its files, text null: absent), `location`, `tests`.
Lists of objects with fixed keys, so `datasets` reads every row with one schema.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings
from ..context.index import WorkspaceIndex
from ..context.summary import ChunkCache
from ..documents import DocumentStore
from ..edits.parse import parse_answer
from ..edits.write import NotWritable, write_answer
from ..eval.runner import EvalError, make_working_copy, request_for
from ..pipeline import EditorSupport, GenerationError, apply_parsed, request_messages
from ..providers.base import ChatMessage
from ..verify.diffs import BadDiff, files_to_check
from ..workspace import Workspace
from . import PROMPT_COMPLETION
from .episodes import TEST, TRAIN, Episode, Skipped


@dataclass
class ExportReport:
    """What became of the episodes: rows per split, and those left out, by reason."""

    rows: dict[str, int] = field(default_factory=lambda: {TRAIN: 0, TEST: 0})
    failed: dict[str, int] = field(default_factory=dict)
    skipped: Skipped = field(default_factory=Skipped)

    @property
    def exported(self) -> int:
        return sum(self.rows.values())

    @property
    def round_trip_failures(self) -> int:
        return sum(self.failed.values())

    def fail(self, reason: str) -> None:
        self.failed[reason] = self.failed.get(reason, 0) + 1

    def summary(self) -> str:
        tried = self.exported + self.round_trip_failures
        parts = [
            f"{self.exported} rows ({self.rows[TRAIN]} train, {self.rows[TEST]} test); "
            f"round trip {self.exported}/{tried}"
        ]
        if self.failed:
            why = ", ".join(f"{n} {reason}" for reason, n in sorted(self.failed.items()))
            parts.append(f"left out {self.round_trip_failures} failing the round trip ({why})")
        if self.skipped.reasons:
            why = ", ".join(f"{n} {r}" for r, n in sorted(self.skipped.reasons.items()))
            parts.append(f"skipped {why}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Row:
    """One exported episode: the conversation and its provenance."""

    messages: tuple[ChatMessage, ...]
    answer: str
    provenance: Mapping[str, Any]
    split: str

    def to_json(self, fmt: str) -> dict[str, Any]:
        turns = [{"role": m.role, "content": m.content} for m in self.messages]
        assistant = {"role": "assistant", "content": self.answer}
        if fmt == PROMPT_COMPLETION:
            return {"prompt": turns, "completion": [assistant], "provenance": self.provenance}
        return {"messages": [*turns, assistant], "provenance": self.provenance}


class RoundTripFailed(Exception):
    """The episode cannot be a row; the message is the reason (for the counts)."""


def _texts(ws: Workspace, root: Path, paths: Iterable[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for rel in paths:
        found = ws.read(root / rel)
        out[rel] = found.text if found is not None else None
    return out


def _gold_after(ep: Episode, root: Path) -> dict[str, str | None]:
    try:
        return files_to_check(ep.task.gold_diff or "", root)
    except BadDiff as exc:
        raise RoundTripFailed(f"gold diff does not apply ({exc})") from None


def provenance(ep: Episode, paths: Sequence[str]) -> dict[str, Any]:
    """The row's provenance column (see the module docstring)."""
    task = ep.task
    target = task.target()
    location = (
        {"path": target.path, "line": target.line, "character": target.character}
        if target is not None
        else None
    )
    keys = (
        "source",
        "id",
        "kind",
        "episode",
        "snapshot_before",
        "snapshot_after",
        "status_before",
        "status_after",
        "before_state",
    )
    out: dict[str, Any] = {k: str(ep.origin.get(k, "")) for k in keys}
    out.update(
        paths=list(paths),
        instruction=task.instruction,
        project=str(task.project),
        files=[{"path": p, "text": t} for p, t in sorted(task.files.items())],
        location=location,
        typecheck=task.checks.typecheck,
        tests=task.checks.tests,
    )
    return out


def export_episode(
    ep: Episode, settings: Settings, work: Path, cache: ChunkCache | None = None
) -> Row:
    """The episode's row; RoundTripFailed saying why there is none."""
    copy = work / "before"
    try:
        root = make_working_copy(ep.task, copy)
        documents = DocumentStore()
        index = WorkspaceIndex(root, documents, cache)
        index.scan()
        ws = Workspace(root, documents)
        req = request_for(ep.task, root)
        prep, messages = request_messages(req, ws, settings, EditorSupport().encoding, index)
        after = dict(ep.after) if ep.after is not None else _gold_after(ep, root)
        before = _texts(ws, root, after)
        changed = {p: t for p, t in after.items() if before.get(p) != t}
        try:
            answer = write_answer(before, changed, settings.model.strategy)
        except NotWritable as exc:
            raise RoundTripFailed(str(exc).split(",")[0]) from None
        changes, reason = apply_parsed(parse_answer(answer), prep, ws)
        if reason is not None:
            raise RoundTripFailed("the answer does not apply")
        got = {c.rel: c.new for c in changes}
        if got != changed:
            raise RoundTripFailed("the answer gives other texts")
        return Row(tuple(messages), answer, provenance(ep, sorted(changed)), ep.split)
    except (EvalError, GenerationError, OSError) as exc:
        raise RoundTripFailed(f"no request ({type(exc).__name__})") from None
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def export(episodes: Iterable[Episode], settings: Settings, report: ExportReport) -> Iterable[Row]:
    """The rows of the episodes that pass the round trip, in order (counted in
    `report`)."""
    cache = ChunkCache()
    with tempfile.TemporaryDirectory(prefix="ocaml-ai-export-") as tmp:
        for ep in episodes:
            try:
                row = export_episode(ep, settings, Path(tmp), cache)
            except RoundTripFailed as exc:
                report.fail(str(exc))
                continue
            report.rows[row.split] += 1
            yield row


def write_rows(out: Path, rows: Iterable[Row], fmt: str) -> None:
    """`train.jsonl` and `test.jsonl` in `out` (both written, maybe empty), each
    through a temporary file renamed into place."""
    out.mkdir(parents=True, exist_ok=True)
    handles: dict[str, tuple[str, Any]] = {}
    try:
        for split in (TRAIN, TEST):
            fd, tmp = tempfile.mkstemp(prefix=f".{split}.", dir=out)
            handles[split] = (tmp, os.fdopen(fd, "w", encoding="utf-8", newline="\n"))
        for row in rows:
            handles[row.split][1].write(json.dumps(row.to_json(fmt), ensure_ascii=False) + "\n")
        for split, (tmp, fh) in handles.items():
            fh.close()
            os.replace(tmp, out / f"{split}.jsonl")
    finally:
        for tmp, fh in handles.values():
            fh.close()
            Path(tmp).unlink(missing_ok=True)
