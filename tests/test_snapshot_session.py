"""A working session recorded and mined end to end: the real `ocaml-ai-ls snapshot
take` (type-checked by the real dune in a shadow) between scripted steps of the
example project, then `snapshot mine` over what was recorded; and the server
recording snapshots (open buffers included) while `snapshots.enabled`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from lsprotocol import types

from ocaml_ai_ls.snapshots.store import SnapshotStore
from tests.editor import copy_example, server_env, start_editor, stop_editor, wait_until
from tests.model_server import ScriptedModel

SHAPES = "lib/shapes.ml"
RECT = "  | Rect (w, h) -> w *. h"


def snapshot(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "ocaml_ai_ls", "snapshot", *args, "--root", str(root)],
        capture_output=True,
        text=True,
        env=server_env("http://127.0.0.1:9/v1"),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


def step(root: Path, old: str, new: str) -> None:
    path = root / SHAPES
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    snapshot(root, "take")


def test_a_session_becomes_edit_and_repair_examples(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    snapshot(root, "take")  # green
    step(root, RECT, "  | Rect (w, h) -> string_of_float (w *. h)")  # red: a type error
    step(root, "string_of_float (w *. h)", "abs_float (w *. h)")  # green: fixed differently
    big = "".join(f"let unit_{i} = {i}.0 *. 2.0\n" for i in range(150))
    (root / "lib/catalog.ml").write_text(big)  # green: a big change that is not a fix
    snapshot(root, "take")
    step(root, "2.0 *. pi *. r", "2 * pi * r")  # red
    step(root, "2 * pi * r", "pi *. (r +. r)")  # green
    timeline = json.loads(snapshot(root, "log", "--json").stdout)
    states = [s["state"]["status"] for s in timeline]
    assert states == ["green", "red", "green", "green", "red", "green"]
    out = tmp_path / "data.jsonl"
    snapshot(root, "mine", "--out", str(out), "--no-model")
    lines = (
        out.read_text().splitlines() + (tmp_path / "data.heldout.jsonl").read_text().splitlines()
    )
    examples: list[dict[str, Any]] = [json.loads(line) for line in lines]
    by_kind = sorted((e["kind"], e["diff"].count("\n+"), e["time"]) for e in examples)
    assert [kind for kind, _, _ in by_kind] == ["edit", "edit", "repair", "repair"]
    edits = sorted((e for e in examples if e["kind"] == "edit"), key=lambda e: e["time"])
    repairs = sorted((e for e in examples if e["kind"] == "repair"), key=lambda e: e["time"])
    # the first edit is the net change green → green; the refactor made no episode
    assert f"-{RECT}\n+  | Rect (w, h) -> abs_float (w *. h)\n" in edits[0]["diff"]
    assert "string_of_float" not in edits[0]["diff"]
    assert "unit_" not in edits[1]["diff"] and "+  | Circle r -> pi *. (r +. r)" in edits[1]["diff"]
    # repairs carry the red state's errors, located
    [error] = repairs[0]["errors"]
    assert (error["path"], error["line"]) == (SHAPES, 9)
    assert "-  | Rect (w, h) -> string_of_float (w *. h)" in repairs[0]["diff"]
    assert repairs[1]["errors"][0]["path"] == SHAPES
    assert repairs[1]["errors"][0]["line"] == 12
    for e in examples:
        assert e["instruction"] == "" and e["instruction_source"] == "none"
        assert e["files_before"] and SHAPES in e["files_before"]
        assert "let area = function" in e["context"]
    # the user's tree never got a _build
    assert not (root / "_build").exists()


async def test_the_server_records_snapshots_while_enabled(
    project: Path, model: ScriptedModel
) -> None:
    settings = {"snapshots": {"enabled": True, "interval": 1}}
    editor = await start_editor(project, model.base_url, init_options=settings)
    store = SnapshotStore(project)
    try:
        assert await wait_until(lambda: len(store.log()) == 1, timeout=60)
        assert store.log()[0].state.status == "green"
        # an unsaved buffer is what the next snapshot holds and type-checks
        uri = editor.open(SHAPES)
        broken = editor.text(SHAPES).replace(RECT, "  | Rect (w, h) -> string_of_float w")
        editor.replace_all(uri, broken)
        assert await wait_until(lambda: len(store.log()) == 2, timeout=60)
        red = store.log()[1]
        assert red.state.status == "red" and red.changed == (SHAPES,)
        assert store.files(red.id)[SHAPES].decode() == broken
        assert red.state.errors[0].path == SHAPES and red.state.errors[0].line == 9
        # turned off at runtime: no more snapshots
        editor.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(
                settings={"ocaml-ai": {"snapshots": {"enabled": False}}}
            )
        )
        await asyncio.sleep(0.5)
        editor.replace_all(uri, broken + "\nlet later = 1\n")
        await asyncio.sleep(2.5)
        assert len(store.log()) == 2
    finally:
        await stop_editor(editor)
    assert (project / SHAPES).read_text() != broken  # the buffer was never saved
