"""The Emacs client (`clients/emacs/ocaml-ai.el`) end to end: headless Emacs with
eglot and the package, the real server eglot starts, and the scripted model on
127.0.0.1.

Each run is bounded twice: the elisp driver (`tests/emacs/ocaml-ai-test.el`) gives up
after its own deadline and exits 1 with the reason, the server's stderr and eglot's
events; `subprocess.run(timeout=)` kills Emacs if even that does not happen. A failure
prints Emacs' output and the server's log.
"""

from __future__ import annotations

import json
import os
import re
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

EMACS = shutil.which("emacs")
pytestmark = pytest.mark.skipif(EMACS is None, reason="emacs is not installed")

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "clients" / "emacs" / "ocaml-ai.el"
DRIVER = Path(__file__).resolve().parent / "emacs" / "ocaml-ai-test.el"
SHAPES = "lib/shapes.ml"
INSTRUCTION = "make rectangle areas non-negative"
#: Seconds one Emacs run may take; the driver's own deadline (60 s) comes first.
RUN_TIMEOUT = 90


def search_replace(new_case: str) -> str:
    return (
        "lib/shapes.ml\n<<<<<<< SEARCH\n  | Rect (w, h) -> w *. h\n=======\n"
        f"  | Rect (w, h) -> {new_case}\n>>>>>>> REPLACE\n"
    )


def _text(data: str | bytes | None) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def run_emacs(
    scenario: str, root: Path, model: ScriptedModel, tmp: Path, **params: Any
) -> dict[str, Any]:
    """Run a scenario of the driver in `emacs --batch`; its result, or a failure with logs."""
    log = tmp / "server.log"
    server_log_args = ["--log-file", str(log), "--log-level", "info"]
    result_file = tmp / "result.json"
    params_file = tmp / "params.json"
    out = tmp / "out"
    out.mkdir()
    params_file.write_text(
        json.dumps(
            {
                "scenario": scenario,
                "package": str(PACKAGE),
                "command": [sys.executable, "-m", "ocaml_ai_ls", "serve", *server_log_args],
                "settings": with_test_settings(params.pop("settings", {})),
                "file": str(root / SHAPES),
                "out": str(out),
                "result": str(result_file),
                **params,
            }
        )
    )
    home = tmp / "home"
    home.mkdir()
    env = server_env(
        model.base_url,
        OCAML_AI_METRICS_DB=str(tmp / "metrics.sqlite3"),
        OCAML_AI_EMACS_TEST=str(params_file),
        HOME=str(home),  # no user packages or init files
    )
    command = [str(EMACS), "--batch", "-l", str(DRIVER), "-f", "ocaml-ai-test-run"]
    started = time.monotonic()
    try:
        proc = subprocess.run(
            command,
            env=env,
            cwd=root,
            stdin=subprocess.DEVNULL,  # a question asked in the minibuffer fails, not hangs
            capture_output=True,
            timeout=RUN_TIMEOUT,
        )
        out_text, err_text, status = _text(proc.stdout), _text(proc.stderr), str(proc.returncode)
    except subprocess.TimeoutExpired as exc:
        out_text, err_text = _text(exc.stdout), _text(exc.stderr)
        status = f"killed after {RUN_TIMEOUT} s"
    elapsed = time.monotonic() - started
    if status != "0" or not result_file.exists():
        server_log = log.read_text(errors="replace") if log.exists() else "(no server log)"
        pytest.fail(
            f"emacs {scenario}: exit {status} after {elapsed:.1f} s\n"
            f"--- emacs stdout\n{out_text}\n--- emacs stderr\n{err_text}\n"
            f"--- server log\n{server_log}"
        )
    result: dict[str, Any] = json.loads(result_file.read_text())
    return result


def metrics_rows(tmp: Path) -> list[tuple[str, int | None]]:
    with sqlite3.connect(tmp / "metrics.sqlite3") as conn:
        rows = conn.execute("SELECT request_id, accepted FROM generations").fetchall()
    return [(str(r[0]), r[1]) for r in rows]


def area_line(root: Path) -> int:
    """1-based line of `let area = function`."""
    lines = (root / SHAPES).read_text().splitlines()
    return 1 + next(i for i, line in enumerate(lines) if line.startswith("let area"))


def test_eglot_attaches_and_the_instruction_action_applies(
    project: Path, model: ScriptedModel, tmp_path: Path
) -> None:
    path = project / SHAPES
    original = path.read_text()
    line = area_line(project)
    path.write_text(
        original.replace("let area = function", f"(* ai: {INSTRUCTION} *)\nlet area = function")
    )
    model.enqueue(search_replace("abs_float (w *. h)"))

    result = run_emacs(
        "code-action", project, model, tmp_path, line=line, title=f"AI: {INSTRUCTION}"
    )

    assert result["server_class"] == "ocaml-ai-eglot-server"
    assert result["request_timeout"] == 45  # eglot waits for the model in our buffers
    assert f"AI: {INSTRUCTION}" in result["offered"]
    assert result["text"] == original.replace("-> w *. h\n", "-> abs_float (w *. h)\n")
    # one model call, with the initializationOptions eglot sent (TEST_SETTINGS: one answer)
    assert len(model.requests) == 1
    assert model.requests[0].get("n", 1) == 1


def test_a_rejected_instruction_action_says_why_once(
    project: Path, model: ScriptedModel, tmp_path: Path
) -> None:
    """eglot runs the action as a command; when no answer gives an edit the user reads
    why in the echo area, once, and the buffer is as it was."""
    path = project / SHAPES
    line = area_line(project)  # where the comment goes
    with_comment = path.read_text().replace("let area", f"(* ai: {INSTRUCTION} *)\nlet area", 1)
    path.write_text(with_comment)
    model.set_default("I would rather not change anything.")  # the answer and its repair

    result = run_emacs(
        "code-action", project, model, tmp_path, line=line, title=f"AI: {INSTRUCTION}"
    )

    said = [m for m in result["messages"] if "no usable edit" in m]
    assert len(said) == 1, result["messages"]
    assert "Server reports (type=1): AI: the model's answer had no usable edit" in said[0]
    assert "no edit found in the answer" in said[0]
    assert result["text"] == with_comment


def test_the_interaction_buffer_shows_candidates_and_applies_one(
    project: Path, model: ScriptedModel, tmp_path: Path
) -> None:
    original = (project / SHAPES).read_text()
    model.enqueue(
        Reply(
            answers=[
                search_replace("abs_float (w *. h)"),  # ok
                search_replace("string_of_float (w *. h)"),  # type error
                search_replace("abs_float (w *. h"),  # parse error
            ]
        )
    )

    result = run_emacs(
        "chat",
        project,
        model,
        tmp_path,
        line=area_line(project) + 2,
        instruction=INSTRUCTION,
        apply=True,
        switch=True,  # M-x ocaml-ai-eglot rather than ocaml-ai-setup's default server
    )

    assert model.requests[0]["n"] == 3  # ocaml-ai-candidates, over the settings' 1
    chat = result["chat"]
    assert "```diff\n" in chat
    assert "### 1. ok · lib/shapes.ml (rank 1 of 3)" in chat, chat
    assert "### 2. type_error · lib/shapes.ml (rank 2 of 3)" in chat, chat
    assert "### 3. parse_error · lib/shapes.ml (rank 3 of 3)" in chat, chat
    assert "+  | Rect (w, h) -> abs_float (w *. h)\n" in chat
    assert f"**lib/shapes.ml:{area_line(project) + 2}**\n\n{INSTRUCTION}\n" in chat
    assert "**lib/shapes.ml:1**" not in chat  # the label moved with the target
    assert re.search(r"\n_lib/shapes\.ml:\d+: 3 candidates from scripted-model, [\d.]+ s_\n", chat)
    assert result["server_class"] == "ocaml-ai-eglot-server"
    # the saved buffer is the buffer the user saw
    assert (tmp_path / "out" / "chat.md").read_text() == chat
    assert result["chat_after"].startswith("My notes.\n\n# ocaml-ai: ")
    assert "```\n\n_Applied._\n\n### 2. type_error" in result["chat_after"]
    assert result["text"] == original.replace("-> w *. h\n", "-> abs_float (w *. h)\n")
    # the feedback reached the metrics (eglot shut the server down politely)
    assert metrics_rows(tmp_path) == [(result["generation"], 1)]


def test_the_interaction_buffer_shows_why_there_is_no_edit(
    project: Path, model: ScriptedModel, tmp_path: Path
) -> None:
    model.enqueue("I would rather not change anything.")

    result = run_emacs(
        "chat",
        project,
        model,
        tmp_path,
        line=area_line(project),
        instruction=INSTRUCTION,
        reject=True,
    )

    chat = result["chat"]
    assert "_lib/shapes.ml:" in chat and ": 0 candidates from scripted-model" in chat, chat
    assert "\n- rejected (scripted-model): no edit found" in chat, chat
    assert "```diff" not in chat and "_Generating…_" not in chat
    assert (project / SHAPES).read_text() == result["text"]  # nothing changed
    assert metrics_rows(tmp_path) == [(result["generation"], 0)]  # C-c C-k


def run_batch(tmp: Path, *args: str) -> str:
    """`emacs --batch ARGS` with an empty home; its output, after checking it exited 0."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    proc = subprocess.run(
        [str(EMACS), "--batch", *args],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    return output


def test_the_package_byte_compiles_without_warnings(tmp_path: Path) -> None:
    copy = tmp_path / PACKAGE.name
    shutil.copy(PACKAGE, copy)
    output = run_batch(
        tmp_path,
        "--eval",
        "(setq byte-compile-error-on-warn t)",
        "-f",
        "batch-byte-compile",
        str(copy),
    )
    assert "Warning" not in output and "Error" not in output, output
    assert copy.with_suffix(".elc").exists()


def test_the_package_documentation_passes_checkdoc(tmp_path: Path) -> None:
    output = run_batch(
        tmp_path, "--eval", f"(progn (require 'eglot) (checkdoc-file {json.dumps(str(PACKAGE))}))"
    )
    assert "Warning" not in output, output


@pytest.mark.parametrize("tuareg", [False, True])
def test_stock_emacs_opens_ocaml_files_in_our_mode_and_starts_eglot(
    project: Path, model: ScriptedModel, tmp_path: Path, tuareg: bool
) -> None:
    """Debian's Emacs has no OCaml mode (issue #16 item 9): with only our client
    loaded, as the README says, a .ml file opens in `ocaml-ai-ocaml-mode` and eglot
    starts ocaml-ai-ls on it; with tuareg installed, tuareg's mode is kept."""
    path = project / SHAPES
    line = area_line(project)
    path.write_text(path.read_text().replace("let area", f"(* ai: {INSTRUCTION} *)\nlet area", 1))

    result = run_emacs("stock", project, model, tmp_path, line=line, tuareg=tuareg)

    assert result["tuareg_before"] is False  # the machine's Emacs is stock
    assert result["mode"] == ("tuareg-mode" if tuareg else "ocaml-ai-ocaml-mode")
    assert result["registered"] is (not tuareg)
    assert result["server_class"] == "ocaml-ai-eglot-server"
    assert f"AI: {INSTRUCTION}" in result["offered"]  # the server read the buffer
    if not tuareg:
        assert result["comment"] == ["(* ", " *)"] and result["in_comment"] is True
    assert model.requests == []  # listing actions does not ask the model
