"""Every path argument of every subcommand is taken relative to the current directory
(issue #16 item 7): each command run as a user runs it, a process whose working
directory is a temporary one, with only relative paths on its command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.editor import copy_example, server_env
from tests.model_server import ScriptedModel
from tests.test_ces import GOOD, write_project
from tests.test_eval_runner import ANSWERS, TASKS, TaskModel
from tests.test_eval_runner import env as eval_env
from tests.test_headless import REWRITE, SHAPES
from tests.test_mine_cli import record, settings
from tests.test_miner import SESSION

PROBLEMS = Path(__file__).parent / "eval" / "multiple" / "problems.jsonl"


def ocaml_ai_ls(
    cwd: Path, *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocaml_ai_ls", *args],
        cwd=cwd,
        env=env or server_env("http://127.0.0.1:9/v1"),  # nothing listens there
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_eval_with_a_relative_tasks_file_out_config_and_replay(tmp_path: Path) -> None:
    """The issue's case: `eval tasks.jsonl --out out` failed every attempt, the working
    copy's files sent to the server as `file:///out/work/...`."""
    shutil.copytree(TASKS.parent / "calc", tmp_path / "calc")
    first = TASKS.read_text().splitlines()[0]
    assert json.loads(first)["id"] == "correct"
    (tmp_path / "tasks.jsonl").write_text(first + "\n")
    (tmp_path / "settings.toml").write_text("[model]\nretries = 0\n")
    with TaskModel(ANSWERS) as model:
        done = ocaml_ai_ls(
            tmp_path,
            *("eval", "tasks.jsonl", "--out", "out", "--config", "settings.toml"),
            "--record-answers",
            env=eval_env(model.base_url),
        )
    assert done.returncode == 0, done.stderr
    (attempt,) = [json.loads(line) for line in (tmp_path / "out/attempts.jsonl").open()]
    assert (attempt["error"], attempt["passed"]) == (None, True), attempt
    assert (tmp_path / "out/report.json").is_file()
    replayed = ocaml_ai_ls(
        tmp_path,
        *("eval", "tasks.jsonl", "--out", "again", "--replay", "out/answers.jsonl"),
        env=eval_env(None),
    )
    assert replayed.returncode == 0, replayed.stderr
    (again,) = [json.loads(line) for line in (tmp_path / "again/attempts.jsonl").open()]
    assert (again["error"], again["passed"]) == (None, True), again


def test_eval_without_out_writes_beside_the_current_directory(tmp_path: Path) -> None:
    shutil.copytree(TASKS.parent / "calc", tmp_path / "calc")
    (tmp_path / "tasks.jsonl").write_text(TASKS.read_text().splitlines()[0] + "\n")
    with TaskModel(ANSWERS) as model:
        done = ocaml_ai_ls(tmp_path, "eval", "tasks.jsonl", env=eval_env(model.base_url))
    assert done.returncode == 0, done.stderr
    (attempt,) = [json.loads(line) for line in (tmp_path / "eval-tasks/attempts.jsonl").open()]
    assert attempt["passed"] is True, attempt


def test_eval_import_multiple_and_mined(tmp_path: Path) -> None:
    shutil.copy(PROBLEMS, tmp_path / "problems.jsonl")
    done = ocaml_ai_ls(tmp_path, "eval-import", "multiple", "problems.jsonl", "--out-dir", "made")
    assert done.returncode == 0, done.stderr
    tasks = [json.loads(line) for line in (tmp_path / "made/tasks.jsonl").open()]
    assert tasks and all((tmp_path / "made" / t["project"]).is_dir() for t in tasks)
    # mined: the snapshots of a project, mined, then imported, all named relatively
    record(tmp_path / "project", SESSION)
    settings(tmp_path / "project", heldout_share=0.999)  # everything held out
    mined = ocaml_ai_ls(
        tmp_path, "snapshot", "mine", "--root", "project", "--out", "train.jsonl", "--no-model"
    )
    assert mined.returncode == 0, mined.stderr
    assert (tmp_path / "train.heldout.jsonl").read_text().strip()
    (tmp_path / "sub").mkdir()
    imported = ocaml_ai_ls(
        tmp_path / "sub",
        *("eval-import", "mined", "../train.heldout.jsonl", "--project", "../project"),
        *("--out", "tasks.jsonl", "--keep-empty"),
    )
    assert imported.returncode == 0, imported.stderr
    task = json.loads((tmp_path / "sub/tasks.jsonl").read_text().splitlines()[0])
    # a project is written relative to the tasks file's directory
    assert (tmp_path / "sub" / task["project"]).resolve() == tmp_path / "project"


def test_snapshot_log_and_take_with_a_relative_root(tmp_path: Path) -> None:
    record(tmp_path / "project", SESSION)
    log = ocaml_ai_ls(tmp_path, "snapshot", "log", "--root", "project", "--json")
    assert log.returncode == 0, log.stderr
    assert len(json.loads(log.stdout)) == len(SESSION)
    example = copy_example(tmp_path / "ex")
    take = ocaml_ai_ls(example.parent, "snapshot", "take", "--root", example.name)
    assert take.returncode == 0, take.stderr
    again = ocaml_ai_ls(example, "snapshot", "log", "--root", ".", "--json")
    assert len(json.loads(again.stdout)) == 1, again.stderr


def test_edit_from_a_subdirectory(tmp_path: Path, model: ScriptedModel) -> None:
    project = copy_example(tmp_path)
    model.enqueue(REWRITE)
    done = ocaml_ai_ls(
        project / "lib",
        *("edit", "shapes.ml:9", "make areas non-negative", "--root", "..", "--apply"),
        env=server_env(model.base_url),
    )
    assert done.returncode == 0, done.stderr
    assert "abs_float (w *. h)" in (project / SHAPES).read_text()


def test_context_doctor_and_recover_with_a_relative_root(tmp_path: Path) -> None:
    project = copy_example(tmp_path)
    context = ocaml_ai_ls(tmp_path, "context", f"shapes/{SHAPES}:9", "--root", "shapes", "--json")
    assert context.returncode == 0, context.stderr
    assert json.loads(context.stdout)
    doctor = ocaml_ai_ls(project / "lib", "doctor", "--root", "..")
    assert f"ocaml-ai-ls doctor: {project}\n" in doctor.stdout, doctor.stderr
    recover = ocaml_ai_ls(tmp_path, "recover", "--root", "shapes")
    assert recover.returncode == 0, recover.stderr
    missing = ocaml_ai_ls(tmp_path, "recover", "--root", "nowhere")
    assert missing.returncode == 2 and str(tmp_path / "nowhere") in missing.stderr


def test_ces_check_with_a_relative_root_and_diff(tmp_path: Path) -> None:
    write_project(tmp_path / "p")
    (tmp_path / "good.diff").write_text(GOOD)
    env = server_env("http://127.0.0.1:9/v1", XDG_CACHE_HOME=str(tmp_path / "cache"))
    done = ocaml_ai_ls(tmp_path, "ces", "check", "--root", "p", "good.diff", env=env)
    assert done.returncode == 0, done.stderr
    (line,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert line["file"] == "good.diff" and line["verification"]["status"] == "ok"


def test_stats_with_a_relative_database(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    done = ocaml_ai_ls(tmp_path / "sub", "stats", "--db", "../none.db", "--json")
    # no such database: it is read only, so it says so rather than create one
    assert done.returncode == 1
    assert str(tmp_path / "none.db") in done.stderr, done.stderr


def test_serve_writes_its_log_file_relative_to_the_current_directory(tmp_path: Path) -> None:
    done = ocaml_ai_ls(tmp_path, "serve", "--log-file", "server.log", "--log-level", "debug")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "server.log").is_file()
