"""What `dataset export` reads: mined examples or eval tasks, as episodes.

An episode is a task (`eval/tasks.py`: a project, overrides of its files for the
"before" state, an instruction, where it is asked) plus the texts of the changed
files after the change, the split it belongs to, and where it came from.

- Mined examples (`snapshot mine`) become tasks as `eval-import mined` makes them
  (`mined_task`). When the workspace's snapshot store still holds the example's
  "before" snapshot, every source file that differs between that snapshot and the
  workspace now is overridden, so the before state is the snapshot's exactly, not
  only in the files the change touched. The training file's examples go to
  `train`, the held-out file's to `test`, as the miner split them.
- Eval tasks are held out by nature: `test`. Their "after" is the gold diff applied
  to the before state (a task without `gold_diff` has none and is left out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..eval.importers import mined_task, read_jsonl
from ..eval.tasks import Task, TaskError, load_tasks, safe_relative
from ..snapshots.store import SnapshotStore, StoreError, source_files

MINED, EVAL = "mined", "eval"
TRAIN, TEST = "train", "test"


class InputError(ValueError):
    """An input file that cannot be read as mined examples or tasks; says where."""


@dataclass(frozen=True)
class Episode:
    task: Task
    #: The changed files after the change (None: deleted); None: from `task.gold_diff`.
    after: Mapping[str, str | None] | None
    split: str
    #: Where it came from: source, id, kind, snapshots and their build states.
    origin: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Skipped:
    """Input rows that became no episode, by reason."""

    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


def input_kind(path: Path) -> str:
    """MINED or EVAL, from the first row's keys; InputError when it is neither."""
    for number, row in read_jsonl(path, InputError):
        if isinstance(row, dict) and "kind" in row and "diff" in row:
            return MINED
        if isinstance(row, dict) and "project" in row and "instruction" in row:
            return EVAL
        raise InputError(
            f"{path}:{number}: neither a mined example (`snapshot mine`) nor an eval task"
        )
    return MINED  # empty: nothing to export either way


def _snapshot_overrides(
    store: SnapshotStore, snapshot: str, project: Path, now: Mapping[str, bytes]
) -> dict[str, str | None] | None:
    """Overrides making the project's sources those of `snapshot`; None when the store
    does not have it or a file is not UTF-8 text."""
    try:
        tree = store.files(snapshot)
    except (StoreError, OSError):
        return None
    out: dict[str, str | None] = {}
    try:
        for rel, data in tree.items():
            if now.get(rel) != data and safe_relative(rel) == rel:
                out[rel] = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    for rel in now:
        if rel not in tree:
            out[rel] = None
    return out


def _after(example: Mapping[str, Any]) -> dict[str, str | None] | None:
    after = example.get("files_after")
    if not isinstance(after, dict):
        return None  # mined before `files_after` existed: the diff says it
    out: dict[str, str | None] = {}
    for rel, text in after.items():
        if safe_relative(rel) != rel or not (text is None or isinstance(text, str)):
            raise ValueError(f"files_after: bad entry {rel!r}")
        out[rel] = text
    return out


def mined_episodes(
    path: Path, project: Path, split: str, skipped: Skipped, keep_empty: bool = False
) -> list[Episode]:
    """The episodes of a mined JSONL file over the workspace `project`."""
    store = SnapshotStore(project)
    has_store = store.exists()
    now = source_files(project) if has_store else {}
    out: list[Episode] = []
    for number, example in read_jsonl(path, InputError):
        if not isinstance(example, dict) or "kind" not in example:
            raise InputError(f"{path}:{number}: not a mined example")
        try:
            task = mined_task(example, project)
            after = _after(example)
        except ValueError as exc:
            raise InputError(f"{path}:{number}: {exc}") from None
        if not task.instruction.strip() and not keep_empty:
            skipped.add("no instruction")
            continue
        before = example.get("before")
        state = "files_before"
        if has_store and isinstance(before, str) and before:
            overrides = _snapshot_overrides(store, before, project, now)
            if overrides is not None:
                task = replace(task, files={**overrides, **task.files})
                state = "snapshot"
        origin = {
            "source": MINED,
            "id": task.id,
            "kind": str(example.get("kind", "")),
            "episode": str(example.get("episode", "")),
            "snapshot_before": str(before or ""),
            "snapshot_after": str(example.get("after") or ""),
            "status_before": str(example.get("status_before") or ""),
            "status_after": str(example.get("status_after") or ""),
            "before_state": state,
        }
        out.append(Episode(task, after, split, origin))
    return out


def eval_episodes(path: Path, skipped: Skipped) -> list[Episode]:
    """The episodes of an eval tasks file (all `test`); tasks without a gold diff are
    left out."""
    try:
        tasks = load_tasks(path)
    except TaskError as exc:
        raise InputError(str(exc)) from None
    out: list[Episode] = []
    for task in tasks:
        if task.gold_diff is None:
            skipped.add("no gold diff")
            continue
        origin = {"source": EVAL, "id": task.id, "kind": "task", "before_state": "task"}
        out.append(Episode(task, None, TEST, origin))
    return out
