"""Importers: mined held-out examples → tasks; MultiPL-E OCaml problems → dune projects
that build with the stub, fail their tests with it and pass them with a correct body
(through the real dune)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ocaml_ai_ls.eval.importers import (
    LIBRARY_PATH,
    STUB,
    diff_files,
    function_name,
    import_mined,
    import_multiple,
)
from ocaml_ai_ls.eval.tasks import Checks, Location, TaskError, load_tasks
from ocaml_ai_ls.snapshots.miner import EDIT, REPAIR, Example, diff_trees

PROBLEMS = Path(__file__).parent / "eval" / "multiple" / "problems.jsonl"
DUNE = shutil.which("dune")

BEFORE = {
    "lib/a.ml": "".join(f"let v{i} = {i}\n" for i in range(10)),
    "lib/b.ml": "let b = 1\nlet c = 2\n",
    "lib/b.mli": "val b : int\n",
}


def _example(after: dict[str, str | None], instruction: str, kind: str = EDIT) -> Example:
    before = {p: t.encode() for p, t in BEFORE.items()}
    new = dict(before)
    for path, text in after.items():
        if text is None:
            new.pop(path, None)
        else:
            new[path] = text.encode()
    paths = sorted(p for p in set(before) | set(new) if before.get(p) != new.get(p))
    change = diff_trees(before, new, paths)
    assert change is not None
    return Example(
        kind=kind,
        episode="e1",
        files_before=change.files_before,
        diff=change.diff,
        errors=[],
        time="2024-05-01T12:00:00Z",
        instruction=instruction,
        instruction_source="model" if instruction else "none",
        change=change,
    )


def test_diff_files_first_changed_line() -> None:
    diff = (
        "--- /dev/null\n+++ b/lib/new.ml\n@@ -0,0 +1 @@\n+let n = 0\n"
        "--- a/lib/a.ml\n+++ b/lib/a.ml\n@@ -3,7 +3,7 @@\n let v2 = 2\n let v3 = 3\n"
        " let v4 = 4\n-let v5 = 5\n+let v5 = 50\n let v6 = 6\n"
        "@@ -9,1 +9,1 @@\n-let v8 = 8\n+let v8 = 80\n"
        "--- a/lib/gone.ml\n+++ /dev/null\n@@ -1 +0,0 @@\n-let g = 1\n"
    )
    assert diff_files(diff) == [
        (None, "lib/new.ml", 0),
        ("lib/a.ml", "lib/a.ml", 5),  # the first hunk; 0-based
        ("lib/gone.ml", None, 0),
    ]


def test_mined_heldout_becomes_tasks(tmp_path: Path) -> None:
    project = tmp_path / "ws"
    project.mkdir()
    edit = _example(
        {
            "lib/a.ml": BEFORE["lib/a.ml"].replace("v6 = 6", "v6 = 60"),
            "lib/a_new.ml": "let fresh = 1\n",
        },
        "make v6 sixty and add a module",
    )
    first_ml = _example(
        {"lib/a_new.ml": "let x = 1\n", "lib/b.ml": "let b = 10\nlet c = 2\n"}, "set b"
    )
    interface_only = _example({"lib/b.mli": "val b : int\nval c : int\n"}, "export c", REPAIR)
    silent = _example({"lib/b.ml": "let b = 2\nlet c = 2\n"}, "")
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text(
        "".join(json.dumps(e.to_json()) + "\n" for e in (edit, first_ml, interface_only, silent))
    )
    out = tmp_path / "tasks" / "mined.jsonl"
    assert import_mined(heldout, project, out) == 3
    tasks = load_tasks(out)
    assert [t.id for t in tasks] == [edit.id, first_ml.id, interface_only.id]
    one, two, three = tasks
    assert one.project == project.resolve()
    assert one.instruction == "make v6 sixty and add a module"
    assert dict(one.files) == {"lib/a.ml": BEFORE["lib/a.ml"], "lib/a_new.ml": None}
    assert one.location == Location("lib/a.ml", 6)  # `let v6 = 6` is the 7th line
    assert edit.change is not None and edit.change.first_lines["lib/a.ml"] == 7  # the miner's
    assert one.checks == Checks(typecheck=True, tests=False)
    assert one.gold_diff == edit.diff
    # The created file comes first in the diff; the location is in the one that exists.
    assert two.location == Location("lib/b.ml", 0)
    assert two.files["lib/a_new.ml"] is None
    # No .ml changed: the .mli, as the miner slices its context; a line added after the
    # end is located at the last line, as the miner does.
    assert three.location == Location("lib/b.mli", 0)
    assert import_mined(heldout, project, out, keep_empty=True) == 4


def test_mined_errors_name_the_line(tmp_path: Path) -> None:
    heldout = tmp_path / "heldout.jsonl"
    good = _example({"lib/b.ml": "let b = 3\nlet c = 2\n"}, "b")
    heldout.write_text(json.dumps(good.to_json()) + "\n{oops\n")
    with pytest.raises(TaskError, match=r"heldout.jsonl:2: not JSON"):
        import_mined(heldout, tmp_path, tmp_path / "out.jsonl")
    bad = good.to_json()
    del bad["diff"]
    heldout.write_text(json.dumps(bad) + "\n")
    with pytest.raises(TaskError, match=r"heldout.jsonl:1: diff is missing"):
        import_mined(heldout, tmp_path, tmp_path / "out.jsonl")
    with pytest.raises(TaskError, match="not a directory"):
        import_mined(heldout, tmp_path / "nowhere", tmp_path / "out.jsonl")


def test_function_name() -> None:
    assert (
        function_name({"prompt": "", "tests": "let assertions =\n let candidate = f' in\n"}) == "f'"
    )
    prompt = "let helper x = x\n(** doc *)\nlet rec main (x : int) : int ="
    assert function_name({"prompt": prompt, "tests": "assert (main 1 = 1)"}) == "main"


def test_multiple_rejects_bad_problems(tmp_path: Path) -> None:
    problems = tmp_path / "p.json"
    problems.write_text(json.dumps([{"name": "a", "language": "py", "prompt": "x", "tests": "y"}]))
    with pytest.raises(TaskError, match=r"p.json: problem 1: language is 'py'"):
        import_multiple(problems, tmp_path / "out")
    problems.write_text(json.dumps({"name": "a", "prompt": "let f (x : int) : int ="}))
    with pytest.raises(TaskError, match="tests is missing"):
        import_multiple(problems, tmp_path / "out")


def _dune(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert DUNE is not None
    return subprocess.run(
        [DUNE, *args, "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )


SOLUTIONS = {
    "HumanEval_1001_sum_squares": "  match lst with [] -> 0 | x :: rest -> (x * x) + sum_squares rest",
    "mbpp_1002_is_palindrome": (
        "  let n = String.length s in\n"
        "  let rec go i = i >= n / 2 || (s.[i] = s.[n - 1 - i] && go (i + 1)) in\n"
        "  go 0"
    ),
    "HumanEval_1003_clamp_all": "  List.map (fun x -> max lo (min hi x)) lst",
}


@pytest.mark.skipif(DUNE is None, reason="dune is not installed")
def test_multiple_projects_build_fail_with_the_stub_and_pass_when_solved(tmp_path: Path) -> None:
    out = tmp_path / "multiple"
    tasks_file = import_multiple(PROBLEMS, out)
    assert tasks_file == out / "tasks.jsonl"
    tasks = load_tasks(tasks_file)
    names = [json.loads(line)["name"] for line in PROBLEMS.read_text().splitlines()]
    assert [t.id for t in tasks] == names
    for task in tasks:
        assert task.project == (out / task.id).resolve()
        assert dict(task.files) == {}
        assert task.checks == Checks(typecheck=True, tests=True)
        assert task.location is not None and task.location.path == LIBRARY_PATH
        source = (task.project / LIBRARY_PATH).read_text()
        assert source.splitlines()[task.location.line] == STUB
        fn = task.instruction.split()[1]
        assert task.instruction == f"Implement {fn} as its documentation says."
        assert f"let candidate = {fn} in" in (task.project / "test/test_problem.ml").read_text()
    # MultiPL-E's `(~2)` for a negative literal is made OCaml.
    assert "[(-2); 5]" in (out / names[0] / "test/test_problem.ml").read_text()

    for task in tasks:
        check = _dune(task.project, "build", "@check")
        assert check.returncode == 0, check.stderr
        tests = _dune(task.project, "test")
        assert tests.returncode != 0
        assert 'Failure("TODO")' in tests.stderr

    for task in tasks:
        assert task.location is not None
        path = task.project / LIBRARY_PATH
        lines = path.read_text().splitlines()
        lines[task.location.line] = SOLUTIONS[task.id]
        path.write_text("\n".join(lines) + "\n")
        solved = _dune(task.project, "test")
        assert solved.returncode == 0, solved.stderr


def test_multiple_accepts_a_json_array(tmp_path: Path) -> None:
    problems = [json.loads(line) for line in PROBLEMS.read_text().splitlines()]
    path = tmp_path / "humaneval-ml.json"
    path.write_text(json.dumps(problems[:2], indent=2))
    tasks = load_tasks(import_multiple(path, tmp_path / "out"))
    assert [t.id for t in tasks] == [p["name"] for p in problems[:2]]
    problems[1]["name"] = problems[0]["name"]
    path.write_text(json.dumps(problems[:2]))
    with pytest.raises(TaskError, match=r"problem 2: name .* repeats"):
        import_multiple(path, tmp_path / "again")


def test_the_command_line_writes_loadable_tasks(tmp_path: Path) -> None:
    import subprocess
    import sys

    from ocaml_ai_ls.eval.tasks import load_tasks

    problems = Path(__file__).resolve().parent / "eval" / "multiple" / "problems.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ocaml_ai_ls",
            "eval-import",
            "multiple",
            str(problems),
            "--out-dir",
            str(tmp_path / "mpl"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    tasks = load_tasks(tmp_path / "mpl" / "tasks.jsonl")
    assert len(tasks) == 3 and all(t.checks.tests for t in tasks)
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "ocaml_ai_ls",
            "eval-import",
            "mined",
            str(tmp_path / "none.jsonl"),
            "--project",
            str(tmp_path / "missing"),
            "--out",
            str(tmp_path / "t.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "not a directory" in bad.stderr
