"""`ocaml-ai-ls edit` as a user runs it: a process that drives the server over stdio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.editor import server_env
from tests.model_server import Reply, ScriptedModel

SHAPES = "lib/shapes.ml"
REWRITE = """Here you go.

lib/shapes.ml
<<<<<<< SEARCH
  | Rect (w, h) -> w *. h
=======
  | Rect (w, h) -> abs_float (w *. h)
>>>>>>> REPLACE

lib/extra.ml
<<<<<<< SEARCH
=======
let extra = 1
>>>>>>> REPLACE
"""


def run_edit(
    project: Path, base_url: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocaml_ai_ls", "edit", *args],
        cwd=project,
        env=env or server_env(base_url),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_prints_the_diff_and_leaves_files_alone(project: Path, model: ScriptedModel) -> None:
    before = (project / SHAPES).read_text()
    model.enqueue(REWRITE)
    done = run_edit(project, model.base_url, f"{SHAPES}:9", "make areas non-negative")
    assert done.returncode == 0, done.stderr
    assert "+  | Rect (w, h) -> abs_float (w *. h)" in done.stdout
    assert "+++ b/lib/extra.ml" in done.stdout
    assert "verification: ok" in done.stderr
    assert (project / SHAPES).read_text() == before
    assert not (project / "lib/extra.ml").exists()
    prompt = model.requests[0]["messages"][-1]["content"]
    assert "Target: `area`" in prompt


def test_apply_writes_the_files(project: Path, model: ScriptedModel) -> None:
    model.enqueue(REWRITE)
    done = run_edit(project, model.base_url, f"{SHAPES}:9:5", "x", "--apply")
    assert done.returncode == 0, done.stderr
    assert "abs_float (w *. h)" in (project / SHAPES).read_text()
    assert (project / "lib/extra.ml").read_text() == "let extra = 1\n"


def test_json_prints_the_command_result(project: Path, model: ScriptedModel) -> None:
    model.enqueue(Reply(answers=[REWRITE, REWRITE]))
    done = run_edit(project, model.base_url, SHAPES, "x", "--json", "--candidates", "2")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert len(result["candidates"]) == 2 and result["applied"] is False
    assert result["candidates"][0]["verification"]["status"] == "ok"


def test_no_usable_edit_exits_1_with_the_reason(project: Path, model: ScriptedModel) -> None:
    model.enqueue("I would rather not.")
    done = run_edit(project, model.base_url, SHAPES, "x")
    assert done.returncode == 1
    assert "no edit found" in done.stderr and done.stdout == ""


def test_no_model_says_what_to_start(project: Path) -> None:
    done = run_edit(project, "", SHAPES, "x", env=server_env("http://127.0.0.1:1/v1"))
    assert done.returncode == 1
    assert "127.0.0.1:1" in done.stderr and "OCAML_AI_BASE_URL" in done.stderr


def test_usage_and_configuration_errors_exit_2(project: Path, model: ScriptedModel) -> None:
    assert run_edit(project, model.base_url, "missing.ml", "x").returncode == 2
    assert run_edit(project, model.base_url, f"{SHAPES}:999", "x").returncode == 2
    (project / ".ocaml-ai.toml").write_text("[model]\ntemperature = 'hot'\n")
    done = run_edit(project, model.base_url, SHAPES, "x")
    assert done.returncode == 2 and "model.temperature" in done.stderr
    assert model.requests == []


def test_a_second_run_reads_the_index_from_the_store(
    project: Path, model: ScriptedModel, tmp_path: Path
) -> None:
    """The first `edit` on a root leaves its file summaries in the cache directory (never
    in the project); the second finds them there and leaves the store as it was."""
    cache = tmp_path / "cache"
    env = server_env(model.base_url, XDG_CACHE_HOME=str(cache))
    model.set_default(REWRITE)
    first = run_edit(project, model.base_url, f"{SHAPES}:9", "x", env=env)
    assert first.returncode == 0, first.stderr
    [store] = (cache / "ocaml-ai-ls" / "index").iterdir()
    written = store.stat().st_mtime_ns
    second = run_edit(project, model.base_url, f"{SHAPES}:9", "x", env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert store.stat().st_mtime_ns == written  # every summary found: nothing to write
    assert not list(project.rglob("*.pickle"))
