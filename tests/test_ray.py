"""Checks on Ray actors (`--ray`) answer as the local path: `ces check` and `eval`,
on a local Ray with 2 CPUs started once for the module, with the real dune."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from ocaml_ai_ls.eval.runner import (  # noqa: E402
    EvalOptions,
    Runner,
    load_settings,
    read_attempts,
    select_arms,
)
from ocaml_ai_ls.eval.tasks import load_tasks  # noqa: E402
from ocaml_ai_ls.verify.ces_options import CesOptions, CesUsageError  # noqa: E402
from ocaml_ai_ls.verify.service import check_files  # noqa: E402

from .test_ces import GOOD, TYPE_ERROR, cli, env_with_cache, tree_digest, write_project  # noqa: E402
from .test_eval_runner import ANSWERS, EXPECTED, TASKS, TaskModel, outcomes  # noqa: E402

#: Type-checks, but the project's test fails.
TEST_FAILURE = GOOD.replace("+let double x = x + x", "+let double x = x + 1")
STALE = GOOD.replace("2 * x", "9 * x")  # does not apply


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def actor_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("ocaml-ai-ls-ray-*"))


def without_times(line: dict[str, Any]) -> dict[str, Any]:
    """A `ces check` line without its stages' milliseconds (they differ run to run)."""
    line = json.loads(json.dumps(line))
    for stage in line.get("verification", {}).get("stages", []):
        stage.pop("ms")
    return line


def ces_check(options: CesOptions, files: list[Path]) -> tuple[int, list[dict[str, Any]]]:
    out = io.StringIO()
    code = check_files(options, [str(f) for f in files], out=out, err=io.StringIO())
    return code, [without_times(json.loads(line)) for line in out.getvalue().splitlines()]


@pytest.fixture(scope="module")
def diffs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    base = tmp_path_factory.mktemp("ray-ces")
    root = write_project(base / "calc")
    files = []
    for name, text in [
        ("good", GOOD),
        ("type_error", TYPE_ERROR),
        ("test_failure", TEST_FAILURE),
        ("stale", STALE),
        ("good_again", GOOD),
    ]:
        files.append(base / f"{name}.diff")
        files[-1].write_text(text)
    return root, files


def test_ces_check_on_ray_answers_as_the_local_path(
    diffs: tuple[Path, list[Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, files = diffs
    digest = tree_digest(root)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    options = CesOptions(root, workers=2, tests=True)
    local = ces_check(options, files)
    on_ray = ces_check(replace(options, ray="auto"), files)
    assert on_ray == local
    code, lines = on_ray
    assert code == 1
    statuses = [line.get("verification", {}).get("status", "error") for line in lines]
    assert statuses == ["ok", "type_error", "test_failure", "error", "ok"]
    assert tree_digest(root) == digest
    assert actor_dirs() == set()


def test_ces_check_ray_address_from_the_command_line(
    diffs: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    """A second process joins the module's Ray by its address."""
    root, files = diffs
    address = ray.get_runtime_context().gcs_address
    args = ["check", "--root", str(root), "--workers", "2", "--ray", address]
    done = subprocess.run(
        cli(*args, *map(str, files[:2])),
        capture_output=True,
        text=True,
        env=env_with_cache(tmp_path / "cache"),
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["verification"]["status"] for line in lines] == ["ok", "type_error"]
    assert lines[1]["verification"]["errors"][0]["line"] == 3


def test_more_workers_than_the_cluster_has_cpus_is_a_usage_error(
    diffs: tuple[Path, list[Path]],
) -> None:
    root, files = diffs
    with pytest.raises(CesUsageError, match="2 CPU"):
        ces_check(CesOptions(root, workers=3, ray="auto"), files[:3])


def run_eval(out: Path, base_url: str, ray_address: str | None) -> None:
    tasks = load_tasks(TASKS)
    settings = load_settings(None, TASKS, tasks)
    settings = replace(settings, model=replace(settings.model, base_url=base_url))
    opts = EvalOptions(
        tasks=tasks,
        out=out,
        settings=settings,
        arms=select_arms(settings, None),
        workers=2,
        ray=ray_address,
    )
    summary = asyncio.run(Runner(opts, progress=io.StringIO()).run())
    assert summary.finished == len(tasks)


def test_eval_on_ray_comes_to_the_local_outcomes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("OCAML_AI_MODEL", raising=False)
    monkeypatch.delenv("OCAML_AI_BASE_URL", raising=False)
    with TaskModel(ANSWERS) as model:
        run_eval(tmp_path / "local", model.base_url, None)
        run_eval(tmp_path / "ray", model.base_url, "auto")
    assert outcomes(tmp_path / "ray") == outcomes(tmp_path / "local") == EXPECTED
    attempts = read_attempts(tmp_path / "ray" / "attempts.jsonl")
    assert not any(a["error"] for a in attempts)
    assert actor_dirs() == set()  # the actors removed their copies and shadows


def test_eval_with_more_workers_than_cpus_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ocaml_ai_ls.eval.cli import main as eval_main

    code = eval_main([str(TASKS), "--workers", "3", "--ray", "auto", "--out", str(tmp_path)])
    assert code == 2
    assert "2 CPU" in capsys.readouterr().err
