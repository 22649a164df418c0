"""The evaluation task format: one JSON object per line (JSONL).

```
{"id": "t1",                      # unique in the file
 "project": "projects/shapes",    # a directory, relative to the tasks file's directory
 "files": {"lib/a.ml": "...",     # overrides of the project's files for the "before" state;
           "lib/new.ml": null},   #   null: the file does not exist before (the task creates it)
 "instruction": "make area non-negative",
 "location": {"path": "lib/a.ml", "line": 3, "character": 0},   # optional, 0-based like LSP
 "checks": {"typecheck": true, "tests": false},                 # optional
 "gold_diff": "--- a/lib/a.ml\\n..."}                            # optional, a reference answer
```

Paths (`files` keys, `location.path`) are relative POSIX paths inside the project:
no absolute path, no `..`. Unknown keys are errors, so a misspelt key is not
silently ignored. Every error names the file and line (`TaskError`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeGuard


class TaskError(ValueError):
    """A tasks file that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Location:
    """Where the editor's cursor is: 0-based line and character, like LSP."""

    path: str
    line: int
    character: int = 0


@dataclass(frozen=True)
class Checks:
    """What a candidate must pass: the type-check, and the project's tests when asked."""

    typecheck: bool = True
    tests: bool = False


@dataclass(frozen=True)
class Task:
    """One held-out task: a project in a "before" state and an instruction."""

    id: str
    #: A directory (absolute once loaded; relative ones resolve against the tasks file).
    project: Path
    #: Overrides of the project's files (relative path → text) for the "before" state;
    #: None: the file does not exist before.
    files: Mapping[str, str | None]
    instruction: str
    #: Default: the first overridden `.ml` file that exists, line 0 (see `target`).
    location: Location | None = None
    checks: Checks = field(default_factory=Checks)
    gold_diff: str | None = None

    def target(self) -> Location | None:
        """Where the request is made: `location`, else the first overridden `.ml` file
        (sorted paths) that exists before, line 0; None when neither is there."""
        if self.location is not None:
            return self.location
        for path in sorted(self.files):
            if path.endswith(".ml") and self.files[path] is not None:
                return Location(path, 0)
        return None


_KEYS = {"id", "project", "files", "instruction", "location", "checks", "gold_diff"}
_REQUIRED = ("id", "project", "instruction")


def safe_relative(path: str) -> str | None:
    """`path` as a normalized relative POSIX path inside a project, or None when it is
    empty, absolute (POSIX or Windows), or climbs out with `..`."""
    if not path or "\\" in path or path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return None
    parts = [p for p in PurePosixPath(path).parts if p != "."]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def _int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _location(value: Any) -> Location:
    if not isinstance(value, dict):
        raise ValueError("location must be an object {path, line, character?}")
    unknown = set(value) - {"path", "line", "character"}
    if unknown:
        raise ValueError(f"unknown key(s) in location: {', '.join(sorted(unknown))}")
    path = value.get("path")
    rel = safe_relative(path) if isinstance(path, str) else None
    if rel is None:
        raise ValueError(f"location.path must be a relative path inside the project: {path!r}")
    line, character = value.get("line"), value.get("character", 0)
    if not _int(line):
        raise ValueError(f"location.line must be an integer >= 0 (0-based), got {line!r}")
    if not _int(character):
        raise ValueError(f"location.character must be an integer >= 0, got {character!r}")
    return Location(rel, line, character)


def _checks(value: Any) -> Checks:
    if not isinstance(value, dict):
        raise ValueError("checks must be an object {typecheck?, tests?}")
    unknown = set(value) - {"typecheck", "tests"}
    if unknown:
        raise ValueError(f"unknown key(s) in checks: {', '.join(sorted(unknown))}")
    typecheck, tests = value.get("typecheck", True), value.get("tests", False)
    if not isinstance(typecheck, bool) or not isinstance(tests, bool):
        raise ValueError("checks.typecheck and checks.tests must be true or false")
    return Checks(typecheck, tests)


def _files(value: Any) -> dict[str, str | None]:
    if not isinstance(value, dict):
        raise ValueError("files must be an object {relative path: text or null}")
    out: dict[str, str | None] = {}
    for key, text in value.items():
        rel = safe_relative(key)
        if rel is None:
            raise ValueError(f"files: {key!r} is not a relative path inside the project")
        if rel in out:
            raise ValueError(f"files: {key!r} names the same file as another key")
        if text is not None and not isinstance(text, str):
            raise ValueError(f"files: {key!r} must map to a string or null")
        out[rel] = text
    return out


def task_from_json(obj: Any, base: Path) -> Task:
    """One task from its decoded JSON (`project` resolved against `base`); ValueError
    saying what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError("a task must be a JSON object")
    unknown = set(obj) - _KEYS
    if unknown:
        raise ValueError(f"unknown key(s): {', '.join(sorted(unknown))}")
    missing = [k for k in _REQUIRED if k not in obj]
    if missing:
        raise ValueError(f"missing key(s): {', '.join(missing)}")
    task_id, project, instruction = obj["id"], obj["project"], obj["instruction"]
    if not isinstance(task_id, str) or not task_id:
        raise ValueError("id must be a non-empty string")
    if not isinstance(project, str) or not project:
        raise ValueError("project must be a directory path (a non-empty string)")
    if not isinstance(instruction, str):
        raise ValueError("instruction must be a string")
    root = Path(project) if os.path.isabs(project) else base / project
    if not root.is_dir():
        raise ValueError(f"project {project!r} is not a directory ({root})")
    gold = obj.get("gold_diff")
    if gold is not None and not isinstance(gold, str):
        raise ValueError("gold_diff must be a string or null")
    location = obj.get("location")
    return Task(
        id=task_id,
        project=root.resolve(),
        files=_files(obj.get("files", {})),
        instruction=instruction,
        location=_location(location) if location is not None else None,
        checks=_checks(obj.get("checks", {})),
        gold_diff=gold,
    )


def load_tasks(path: Path) -> list[Task]:
    """The tasks of a JSONL file, in file order; blank lines are skipped. Raises TaskError
    naming the line for bad JSON, a bad field, a missing project or a repeated id."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"{path}: cannot read the tasks file: {exc}") from None
    base = path.resolve().parent
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskError(f"{path}:{number}: not JSON: {exc.msg} (column {exc.colno})") from None
        try:
            task = task_from_json(obj, base)
        except ValueError as exc:
            raise TaskError(f"{path}:{number}: {exc}") from None
        if task.id in seen:
            raise TaskError(f"{path}:{number}: id {task.id!r} repeats line {seen[task.id]}")
        seen[task.id] = number
        tasks.append(task)
    return tasks


def dump_task(task: Task, base: Path) -> dict[str, Any]:
    """The JSON object of a task, `project` relative to `base` (the tasks file's
    directory) when possible, so a task set can move as a whole."""
    project = os.path.abspath(task.project)
    try:
        rel = os.path.relpath(project, os.path.abspath(base))
    except ValueError:  # another drive
        rel = project
    out: dict[str, Any] = {
        "id": task.id,
        "project": Path(rel).as_posix(),
        "files": {k: task.files[k] for k in sorted(task.files)},
        "instruction": task.instruction,
    }
    if task.location is not None:
        loc = task.location
        out["location"] = {"path": loc.path, "line": loc.line, "character": loc.character}
    out["checks"] = {"typecheck": task.checks.typecheck, "tests": task.checks.tests}
    if task.gold_diff is not None:
        out["gold_diff"] = task.gold_diff
    return out


def write_tasks(path: Path, tasks: Iterable[Task]) -> int:
    """Write tasks as JSONL (projects relative to the file's directory); how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.resolve().parent
    count = 0
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for task in tasks:
            fh.write(json.dumps(dump_task(task, base), ensure_ascii=False) + "\n")
            count += 1
    return count
