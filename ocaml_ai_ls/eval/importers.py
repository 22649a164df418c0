"""Turn other formats into evaluation tasks (`tasks.py`).

- `import_mined`: the held-out file `snapshot mine` writes (`snapshots/miner.py`). Each
  example is a task over the workspace it was mined from: its `files_before` are the
  overrides, and files the change creates are overridden as absent (null), so the
  before state is the example's. The rest of the workspace is taken as it is now, which
  is close enough for the small, local changes the miner keeps.
- `import_multiple`: MultiPL-E's OCaml problems (`nuprl/MultiPL-E`, configurations
  `humaneval-ml` and `mbpp-ml`): `{name, language: "ml", prompt, tests, stop_tokens,
  doctests, original, prompt_terminology}`. The prompt is a doc comment and a typed
  header `let [rec] f (x : int) : int =` whose body the model completes; the tests are
  `\\nlet assertions =\\n let candidate = f in\\n  (assert ((candidate 1) = 2));\\n ...
  \\n  ()\\n`, run after the completed prompt (MultiPL-E runs `ocaml` on the
  concatenation). Each problem becomes a dune project: the library `problem` holds
  the prompt with a stub body (`failwith "TODO"`: it type-checks, the tests fail), the
  test `test_problem` opens it and runs the tests, so `dune test` is the check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .tasks import Checks, Location, Task, TaskError, safe_relative, write_tasks

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def read_jsonl(path: Path, error: type[ValueError] = TaskError) -> Iterator[tuple[int, Any]]:
    """Each JSON line of `path` with its 1-based number, blank lines skipped; a file
    that cannot be read or a line that is not JSON raises `error` saying where."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{path}:{number}: not JSON: {exc.msg} (column {exc.colno})") from None


def _strip_prefix(name: str) -> str | None:
    """The path of a diff header's file name (`a/p`, `b/p`), None for /dev/null."""
    name = name.split("\t", 1)[0].rstrip("\r\n")
    if name == "/dev/null":
        return None
    return name[2:] if name.startswith(("a/", "b/")) else name


def diff_files(diff: str) -> list[tuple[str | None, str | None, int | None]]:
    """Per file of a unified diff, in order: (old path, new path, 0-based line of its first
    changed line in the old file); None for /dev/null, and for the line when the file
    has no hunk."""
    out: list[tuple[str | None, str | None, int | None]] = []
    lines = diff.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            old, new = _strip_prefix(lines[i][4:]), _strip_prefix(lines[i + 1][4:])
            first: int | None = None
            i += 2
            while i < len(lines) and not (
                lines[i].startswith("--- ")
                and i + 1 < len(lines)
                and lines[i + 1].startswith("+++ ")
            ):
                match = _HUNK.match(lines[i])
                if match and first is None:
                    start, count = int(match[1]), int(match[2] or 1)
                    context = 0
                    for body in lines[i + 1 :]:
                        if body.startswith(" "):
                            context += 1
                        elif body.startswith("\\"):
                            continue
                        else:
                            break
                    # The old start line is 1-based and the first change follows the
                    # hunk's leading context; a hunk with no old lines inserts after
                    # line `start`, so before the 0-based line `start`.
                    first = start if count == 0 else start - 1 + context
                i += 1
            out.append((old, new, first))
        else:
            i += 1
    return out


def mined_task(example: dict[str, Any], project: Path) -> Task:
    """The task of one mined example (see the module docstring); ValueError when a field
    is missing or of the wrong type."""
    for key, kind in (("id", str), ("diff", str), ("files_before", dict), ("instruction", str)):
        if not isinstance(example.get(key), kind):
            raise ValueError(f"{key} is missing or not a {kind.__name__}")
    files: dict[str, str | None] = {}
    for path, text in example["files_before"].items():
        rel = safe_relative(path)
        if rel is None or not isinstance(text, str):
            raise ValueError(f"files_before: bad entry {path!r}")
        files[rel] = text
    changed = diff_files(example["diff"])
    for old, new, _ in changed:
        if old is None and new is not None:
            rel = safe_relative(new)
            if rel is None:
                raise ValueError(f"diff: bad path {new!r}")
            files.setdefault(rel, None)  # created by the change: absent before
    location = None
    for suffix in (".ml", ".mli"):  # as the miner slices its context
        for old, _, first in changed:
            rel = safe_relative(old) if old is not None else None
            if rel is not None and rel.endswith(suffix) and files.get(rel) is not None:
                text = files[rel] or ""
                last = max(len(text.splitlines()) - 1, 0)
                location = Location(rel, min(first or 0, last))
                break
        if location is not None:
            break
    return Task(
        id=example["id"],
        project=project.resolve(),
        files=files,
        instruction=example["instruction"],
        location=location,
        checks=Checks(typecheck=True, tests=False),
        gold_diff=example["diff"],
    )


def import_mined(heldout: Path, project: Path, out: Path, keep_empty: bool = False) -> int:
    """Write the tasks of a mined held-out JSONL file over the workspace `project` to
    `out` (JSONL); examples without an instruction are skipped unless `keep_empty`.
    Returns the number of tasks written; TaskError names a bad input line."""
    if not project.is_dir():
        raise TaskError(f"{project}: not a directory (the workspace the examples came from)")
    tasks: list[Task] = []
    for number, example in read_jsonl(heldout):
        if not isinstance(example, dict):
            raise TaskError(f"{heldout}:{number}: an example must be a JSON object")
        try:
            task = mined_task(example, project)
        except ValueError as exc:
            raise TaskError(f"{heldout}:{number}: {exc}") from None
        if task.instruction.strip() or keep_empty:
            tasks.append(task)
    return write_tasks(out, tasks)


# --- MultiPL-E ---------------------------------------------------------------------

STUB = '  failwith "TODO"'
LIBRARY_PATH = "lib/problem.ml"
_CANDIDATE = re.compile(r"\blet\s+candidate\s*=\s*([a-z_][A-Za-z0-9_']*)\s+in\b")
_LET = re.compile(r"^let\s+(?:rec\s+)?([a-z_][A-Za-z0-9_']*)", re.MULTILINE)
#: MultiPL-E writes a negative int literal as `(~5)`, which OCaml does not parse.
_TILDE_INT = re.compile(r"\(~(\d[\d_]*)\)")
#: Warnings stay warnings, as in the toplevel MultiPL-E runs; the stub's unused
#: parameters and `rec` are not worth a warning.
_FLAGS = "(flags (:standard -warn-error -a -w -27-39))"


def _problems(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, problem) pairs from a JSON array or object, or from JSONL."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"{path}: cannot read: {exc}") from None
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, list):
        items = [(f"{path}: problem {i + 1}", p) for i, p in enumerate(whole)]
    elif isinstance(whole, dict):
        items = [(str(path), whole)]
    else:
        items = [(f"{path}:{n}", p) for n, p in read_jsonl(path)]
    for where, problem in items:
        if not isinstance(problem, dict):
            raise TaskError(f"{where}: a problem must be a JSON object")
    return items


def function_name(problem: dict[str, Any]) -> str:
    """The function under test: what the tests bind `candidate` to, else the prompt's
    last top-level `let`."""
    match = _CANDIDATE.search(problem["tests"])
    if match:
        return match[1]
    names = _LET.findall(problem["prompt"])
    if not names:
        raise ValueError("no `let candidate = f in` in the tests and no `let f` in the prompt")
    return str(names[-1])


def _directory_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip(".") or "problem"


def multiple_project(problem: dict[str, Any], root: Path) -> Task:
    """Write the dune project of one MultiPL-E problem at `root`; its task, with `project`
    = `root` (see the module docstring)."""
    for key in ("name", "prompt", "tests"):
        if not isinstance(problem.get(key), str) or not problem[key]:
            raise ValueError(f"{key} is missing or not a non-empty string")
    language = problem.get("language", "ml")
    if language not in ("ml", "ocaml"):
        raise ValueError(f"language is {language!r}, not OCaml (ml)")
    fn = function_name(problem)
    prompt = problem["prompt"].rstrip() + "\n"
    stub_line = len(prompt.splitlines())
    tests = _TILDE_INT.sub(r"(-\1)", problem["tests"])
    files = {
        "dune-project": "(lang dune 2.9)\n",
        "lib/dune": f"(library\n (name problem)\n {_FLAGS})\n",
        LIBRARY_PATH: prompt + STUB + "\n",
        "test/dune": f"(test\n (name test_problem)\n (libraries problem)\n {_FLAGS})\n",
        "test/test_problem.ml": "open Problem\n" + tests.rstrip() + "\n",
    }
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", newline="\n")
    return Task(
        id=problem["name"],
        project=root.resolve(),
        files={},
        instruction=f"Implement {fn} as its documentation says.",
        location=Location(LIBRARY_PATH, stub_line, 0),
        checks=Checks(typecheck=True, tests=True),
    )


def import_multiple(problems: Path, out_dir: Path) -> Path:
    """Generate one dune project per MultiPL-E problem under `out_dir/<name>/` and the
    tasks file `out_dir/tasks.jsonl` (its path is returned). TaskError names a bad
    problem."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks: list[Task] = []
    used: dict[str, str] = {}
    for where, problem in _problems(problems):
        name = problem.get("name")
        directory = _directory_name(name) if isinstance(name, str) else ""
        if directory in used:
            raise TaskError(f"{where}: name {name!r} repeats {used[directory]}")
        used[directory] = where
        try:
            tasks.append(multiple_project(problem, out_dir / directory))
        except ValueError as exc:
            raise TaskError(f"{where}: {exc}") from None
    path = out_dir / "tasks.jsonl"
    write_tasks(path, tasks)
    return path
