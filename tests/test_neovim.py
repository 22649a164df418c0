"""The Neovim client (`clients/neovim`) end to end: headless Neovim with the plugin,
the real server it starts, and the scripted model on 127.0.0.1.

Each run is bounded (`timeout=`); a Lua script that fails quits with `cquit 1` and
its reason, and the test prints Neovim's output and the server's log.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.editor import server_env, with_test_settings
from tests.model_server import Reply, ScriptedModel

NVIM = shutil.which("nvim")
pytestmark = pytest.mark.skipif(NVIM is None, reason="nvim is not installed")

REPO = Path(__file__).resolve().parent.parent
PLUGIN = REPO / "clients" / "neovim"
SCRIPTS = Path(__file__).resolve().parent / "neovim"
SHAPES = "lib/shapes.ml"
INSTRUCTION = "make rectangle areas non-negative"
RUN_TIMEOUT = 60


def search_replace(new_case: str) -> str:
    return (
        "lib/shapes.ml\n<<<<<<< SEARCH\n  | Rect (w, h) -> w *. h\n=======\n"
        f"  | Rect (w, h) -> {new_case}\n>>>>>>> REPLACE\n"
    )


def run_nvim(script: str, tmp: Path, cwd: Path, env: dict[str, str], **params: Any) -> Any:
    """Run a Lua test script in headless Neovim; its result, or a failure with the logs."""
    result_file = tmp / "result.json"
    params_file = tmp / "params.json"
    params_file.write_text(json.dumps({"result": str(result_file), "tmp": str(tmp), **params}))
    env = {
        **env,
        "NVIM_OCAML_AI_TEST": str(params_file),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "XDG_STATE_HOME": str(tmp / "state"),
    }
    command = [
        str(NVIM),
        "--headless",
        "--clean",
        "-u",
        "NONE",
        "-i",
        "NONE",
        "--cmd",
        f"set rtp^={PLUGIN}",
        "-c",
        f"luafile {SCRIPTS / script}",
    ]
    started = time.monotonic()
    try:
        proc = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
        out, err, status = proc.stdout, proc.stderr, str(proc.returncode)
    except subprocess.TimeoutExpired as exc:
        out, err = _text(exc.stdout), _text(exc.stderr)
        status = f"killed after {RUN_TIMEOUT} s"
    elapsed = time.monotonic() - started
    if status != "0" or not result_file.exists():
        log = tmp / "server.log"
        server_log = log.read_text(errors="replace") if log.exists() else "(no server log)"
        pytest.fail(
            f"nvim {script}: exit {status} after {elapsed:.1f} s\n"
            f"--- nvim stdout\n{out}\n--- nvim stderr\n{err}\n--- server log\n{server_log}"
        )
    return json.loads(result_file.read_text())


def run_with_server(
    script: str, root: Path, model: ScriptedModel, tmp: Path, **params: Any
) -> dict[str, Any]:
    """A script that opens lib/shapes.ml with the plugin starting the real server."""
    cmd = [sys.executable, "-m", "ocaml_ai_ls", "serve"]
    cmd += ["--log-file", str(tmp / "server.log"), "--log-level", "info"]
    env = server_env(model.base_url, OCAML_AI_METRICS_DB=str(tmp / "metrics.sqlite3"))
    result: dict[str, Any] = run_nvim(
        script,
        tmp,
        root,
        env,
        cmd=cmd,
        settings=with_test_settings(params.pop("settings", {})),
        file=str(root / SHAPES),
        **params,
    )
    return result


def _text(data: str | bytes | None) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def area_line(root: Path) -> int:
    """0-based line of `let area = function`."""
    lines = (root / SHAPES).read_text().splitlines()
    return next(i for i, line in enumerate(lines) if line.startswith("let area"))


def expected_with(root: Path, new_case: str) -> str:
    original = (root / SHAPES).read_text()
    return original.replace("  | Rect (w, h) -> w *. h\n", f"  | Rect (w, h) -> {new_case}\n")


def metrics_rows(tmp: Path) -> list[tuple[str, int | None]]:
    with sqlite3.connect(tmp / "metrics.sqlite3") as conn:
        rows = conn.execute("SELECT request_id, accepted FROM generations").fetchall()
    return [(str(r[0]), r[1]) for r in rows]


def test_plugin_ranges_roots_labels_and_progress(tmp_path: Path) -> None:
    (tmp_path / "proj" / "lib").mkdir(parents=True)
    (tmp_path / "proj" / "dune-project").write_text("(lang dune 3.0)\n")
    (tmp_path / "loose").mkdir()
    assert run_nvim("units.lua", tmp_path, tmp_path, dict(os.environ)) == {"ok": True}


def test_code_action_on_an_instruction_comment(
    project: Path, model: ScriptedModel, tmp_path: Path
) -> None:
    path = project / SHAPES
    original = path.read_text()
    line = area_line(project)
    lines = original.splitlines(keepends=True)
    lines.insert(line, f"(* ai: {INSTRUCTION} *)\n")
    path.write_text("".join(lines))
    model.enqueue(search_replace("abs_float (w *. h)"))

    result = run_with_server(
        "code_action.lua",
        project,
        model,
        tmp_path,
        line=line,
        title=f"AI: {INSTRUCTION}",
        interface=str(project / "lib" / "shapes.mli"),
    )

    assert f"AI: {INSTRUCTION}" in result["offered"]
    text = result["text"]
    assert "(* ai:" not in text
    assert text == original.replace("-> w *. h\n", "-> abs_float (w *. h)\n")
    assert len(model.requests) == 1
    # the interface file attached to the same server
    assert result["clients"] == 1
    assert result["interface_filetype"] in ("ocaml", "ocamlinterface")
    # progress showed in the command line
    assert any(e.startswith(f"ocaml-ai: AI: {INSTRUCTION}") for e in result["echoed"])


def test_command_offers_ranked_candidates_and_applies_the_chosen_one(
    project: Path, model: ScriptedModel, tmp_path: Path
) -> None:
    model.enqueue(
        Reply(
            answers=[
                search_replace("string_of_float (w *. h)"),  # type error
                search_replace("abs_float (w *. h"),  # parse error
                search_replace("abs_float (w *. h)"),  # ok
            ]
        )
    )

    result = run_with_server(
        "command.lua",
        project,
        model,
        tmp_path,
        line=area_line(project),
        column=4,
        candidates=3,
        choose=1,
        command=f"OcamlAi {INSTRUCTION}",
        settings={"generate": {"candidates": 1}},  # setup{candidates = 3} wins
    )

    assert model.requests[0]["n"] == 3
    labels = result["labels"]
    assert len(labels) == 3, labels
    assert labels == [
        "1. ok  lib/shapes.ml (+1 -1)",
        "2. type_error  lib/shapes.ml (+1 -1)",
        "3. parse_error  lib/shapes.ml (+1 -1)",
    ]
    assert result["text"] == expected_with(project, "abs_float (w *. h)")
    [preview] = result["previews"]
    assert preview["filetype"] == "diff" and not preview["current"]
    assert any(line.startswith("+  | Rect (w, h) -> ") for line in preview["lines"])
    assert result["windows"] == 1  # the preview closed after the choice
    assert result["feedback"] == {"id": result["id"], "accepted": True, "done": True}
    # the server stopped cleanly and wrote the outcome
    assert metrics_rows(tmp_path) == [(result["id"], 1)]
    assert any("ocaml-ai: AI: " in e and ": model" in e for e in result["echoed"])


def test_command_cancelled_and_no_usable_edit(
    project: Path, model: ScriptedModel, tmp_path: Path
) -> None:
    original = (project / SHAPES).read_text()
    model.enqueue(Reply(answers=[search_replace("abs_float (w *. h)")]))
    model.enqueue("I am sorry, I cannot help with OCaml today.")
    first, second = tmp_path / "cancel", tmp_path / "nothing"
    first.mkdir()
    second.mkdir()
    cancelled = run_with_server(
        "command.lua",
        project,
        model,
        first,
        line=area_line(project),
        candidates=1,
        choose=0,
        command=f"OcamlAi {INSTRUCTION}",
    )
    assert cancelled["asked"] and cancelled["text"] == original
    assert cancelled["feedback"] == {"id": cancelled["id"], "accepted": False, "done": True}
    assert metrics_rows(first) == [(cancelled["id"], 0)]

    nothing = run_with_server(
        "command.lua",
        project,
        model,
        second,
        line=area_line(project),
        candidates=1,
        choose=1,
        command="2,3OcamlAi do something",
        settings={"verify": {"repair_rounds": 0}},
    )
    assert not nothing["asked"] and nothing["text"] == original
    [note] = [n for n in nothing["notes"] if "no usable edit" in n["message"]]
    assert note["level"] == 3  # vim.log.levels.WARN
    assert "no edit found" in note["message"]
    assert len(model.requests) == 2
    assert "do something" in model.requests[1]["messages"][-1]["content"]
