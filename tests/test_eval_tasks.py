"""The task format: round trip, deletion overrides, and errors that name the line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ocaml_ai_ls.eval.tasks import (
    Checks,
    Location,
    Task,
    TaskError,
    dump_task,
    load_tasks,
    write_tasks,
)


def _write(path: Path, *lines: Any) -> Path:
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def base(tmp_path: Path) -> Path:
    (tmp_path / "proj" / "lib").mkdir(parents=True)
    return tmp_path


def _task(**extra: Any) -> dict[str, Any]:
    return {"id": "t1", "project": "proj", "instruction": "do it", **extra}


def test_round_trip_keeps_every_field(base: Path) -> None:
    task = Task(
        id="t1",
        project=(base / "proj").resolve(),
        files={"lib/a.ml": "let x = 1\n", "lib/new.ml": None},
        instruction="make x two",
        location=Location("lib/a.ml", 0, 4),
        checks=Checks(typecheck=True, tests=True),
        gold_diff="--- a/lib/a.ml\n+++ b/lib/a.ml\n",
    )
    plain = Task(id="t2", project=(base / "proj").resolve(), files={}, instruction="")
    path = base / "tasks.jsonl"
    assert write_tasks(path, [task, plain]) == 2
    first = json.loads(path.read_text().splitlines()[0])
    assert first["project"] == "proj"  # relative to the file, so the set can move
    assert first["files"]["lib/new.ml"] is None
    assert "location" not in json.loads(path.read_text().splitlines()[1])
    assert load_tasks(path) == [task, plain]
    assert dump_task(task, base) == first


def test_defaults_and_target(base: Path) -> None:
    path = _write(
        base / "t.jsonl",
        "",
        _task(files={"lib/b.ml": None, "lib/c.mli": "", "lib/z.ml": "x"}),
        "   ",
    )
    [task] = load_tasks(path)
    assert task.project == (base / "proj").resolve()
    assert task.checks == Checks(typecheck=True, tests=False)
    assert task.location is None and task.gold_diff is None
    assert task.files["lib/b.ml"] is None  # absent in the before state
    assert task.target() == Location("lib/z.ml", 0)  # the first .ml that exists
    assert Task("x", base, {}, "").target() is None


def test_absolute_project_and_normalized_paths(base: Path) -> None:
    path = _write(
        base / "t.jsonl",
        _task(project=str(base / "proj"), files={"./lib//a.ml": "a"}),
    )
    [task] = load_tasks(path)
    assert task.project == (base / "proj").resolve()
    assert dict(task.files) == {"lib/a.ml": "a"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "must be a JSON object"),
        (_task(id=""), "id must be"),
        ({"id": "t", "project": "proj"}, "missing key(s): instruction"),
        (_task(project="nowhere"), "is not a directory"),
        (_task(instrution="typo"), "unknown key(s): instrution"),
        (_task(files={"../outside.ml": "x"}), "not a relative path inside the project"),
        (_task(files={"/etc/passwd": "x"}), "not a relative path inside the project"),
        (_task(files={"lib\\a.ml": "x"}), "not a relative path inside the project"),
        (_task(files={"a.ml": "x", "./a.ml": "y"}), "names the same file"),
        (_task(files={"a.ml": 3}), "string or null"),
        (_task(files=["a.ml"]), "files must be an object"),
        (_task(location={"path": "../a.ml", "line": 0}), "location.path"),
        (_task(location={"path": "a.ml", "line": -1}), "location.line"),
        (_task(location={"path": "a.ml", "line": True}), "location.line"),
        (_task(location={"path": "a.ml", "line": 0, "col": 1}), "unknown key(s) in location"),
        (_task(checks={"tests": "yes"}), "must be true or false"),
        (_task(checks={"test": True}), "unknown key(s) in checks"),
        (_task(gold_diff=1), "gold_diff"),
    ],
)
def test_errors_name_the_line(base: Path, line: Any, message: str) -> None:
    path = _write(base / "t.jsonl", _task(id="ok"), "", line)
    with pytest.raises(TaskError) as info:
        load_tasks(path)
    assert f"{path}:3: " in str(info.value)
    assert message in str(info.value)


def test_repeated_id_names_both_lines(base: Path) -> None:
    path = _write(base / "t.jsonl", _task(), _task())
    with pytest.raises(TaskError, match=r":2: id 't1' repeats line 1"):
        load_tasks(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="cannot read"):
        load_tasks(tmp_path / "none.jsonl")
