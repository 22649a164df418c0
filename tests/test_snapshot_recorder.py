"""The recorder with the real dune and git: `snapshot take` between the scripted steps
of a session on a copy of the example project, `watch`, open buffers, no dune."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ocaml_ai_ls import cli
from ocaml_ai_ls.config import SnapshotSettings
from ocaml_ai_ls.snapshots.recorder import ModuleChecker, Recorder, take_snapshot
from ocaml_ai_ls.snapshots.store import GREEN, RED, UNKNOWN, SnapshotStore
from ocaml_ai_ls.verify.single import compiler

REPO = Path(__file__).resolve().parent.parent
BROKEN = ("Rect (w, h) -> w *. h", 'Rect (w, h) -> w *. "h"')


def snapshot_argv(*args: str) -> list[str]:
    """`ocaml-ai-ls snapshot ARGS` (through the module's own entry point until the
    command is wired into cli.py)."""
    if "snapshot" in cli.COMMANDS:
        return [sys.executable, "-m", "ocaml_ai_ls", "snapshot", *args]
    return [sys.executable, "-m", "ocaml_ai_ls.snapshots.cli", *args]


def snapshot(root: Path, *args: str) -> str:
    """Run `ocaml-ai-ls snapshot ARGS` in the project (the root found from the current
    directory, as a user runs it); its stdout."""
    done = subprocess.run(
        snapshot_argv(*args),
        cwd=root / "lib",
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_a_scripted_session_records_green_red_green(project: Path) -> None:
    assert "green" in snapshot(project, "take")
    assert snapshot(project, "take").strip() == "nothing changed"
    edit(project, "lib/shapes.ml", *BROKEN)
    red = snapshot(project, "take")
    assert " red " in red and "lib/shapes.ml:9: This expression has type string" in red
    edit(project, "lib/shapes.ml", BROKEN[1], BROKEN[0])
    edit(project, "bin/main.ml", "Shapes.Circle 1.0", "Shapes.Circle 2.0")
    assert "green" in snapshot(project, "take")
    assert snapshot(project, "take").strip() == "nothing changed"

    timeline: list[dict[str, Any]] = json.loads(snapshot(project, "log", "--json"))
    assert [s["state"]["status"] for s in timeline] == ["green", "red", "green"]
    assert [s["changed"] for s in timeline[1:]] == [
        ["lib/shapes.ml"],
        ["bin/main.ml", "lib/shapes.ml"],
    ]
    error = timeline[1]["state"]["errors"][0]
    assert (error["path"], error["line"]) == ("lib/shapes.ml", 9)
    assert "This expression has type string" in error["message"]
    lines = snapshot(project, "log").splitlines()
    assert len(lines) == 3 and "red" in lines[1] and "lib/shapes.ml:9:" in lines[1]
    assert "6 files (bin/dune, bin/main.ml, dune-project, ...)" in lines[0]
    assert not (project / "_build").exists()  # checked in a shadow, never in the project


def test_watch_records_each_change_until_sigterm(project: Path) -> None:
    watch = subprocess.Popen(
        snapshot_argv("watch", "--root", str(project), "--interval", "0.2"),
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watch.stdout is not None
        assert " green " in watch.stdout.readline()
        edit(project, "lib/shapes.ml", *BROKEN)
        assert " red " in watch.stdout.readline()
        watch.send_signal(signal.SIGTERM)
        assert watch.wait(timeout=30) == 0
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    store = SnapshotStore(project.resolve())
    assert [s.state.status for s in store.log()] == [GREEN, RED]
    assert not (project / "_build").exists()


async def test_open_buffers_are_what_is_stored_and_checked(project: Path, tmp_path: Path) -> None:
    text = (project / "lib/shapes.ml").read_text()
    buffers = {"lib/shapes.ml": text.replace(*BROKEN)}  # unsaved: the disk is still green
    recorder = Recorder(project, SnapshotSettings(), lambda: buffers, data_dir=tmp_path / "data")
    try:
        snap = await recorder.take()
        assert snap is not None and snap.state.status == RED
        assert snap.state.errors[0].path == "lib/shapes.ml"
        assert recorder.store.files(snap.id)["lib/shapes.ml"] == buffers["lib/shapes.ml"].encode()
        buffers.clear()  # closed without saving
        stop = asyncio.Event()
        run = asyncio.create_task(recorder.run(stop, interval=0.05))
        for _ in range(600):
            await asyncio.sleep(0.05)
            if len(recorder.store.log()) == 2:
                break
        stop.set()
        await run
    finally:
        recorder.close()
    log = recorder.store.log()
    assert [s.state.status for s in log] == [RED, GREEN]
    assert recorder.store.files(log[-1].id)["lib/shapes.ml"] == text.encode()


@pytest.mark.skipif(compiler() is None, reason="no OCaml compiler")
async def test_without_dune_changed_modules_are_compiled_alone(tmp_path: Path) -> None:
    root = tmp_path / "scratch"
    root.mkdir()
    (root / "a.ml").write_text("let x = 1\n")
    store = SnapshotStore(root, tmp_path / "data")
    checker = ModuleChecker(timeout=60)
    first = await take_snapshot(root, store, checker)
    assert first is not None and first.state.status == GREEN
    (root / "a.ml").write_text('let x = 1 + "one"\n')
    red = await take_snapshot(root, store, checker)
    assert red is not None and red.state.status == RED
    assert (red.state.errors[0].path, red.state.errors[0].line) == ("a.ml", 1)
    (root / "a.ml").write_text("let x = 2\n")
    green = await take_snapshot(root, store, checker)
    assert green is not None and green.state.status == GREEN
    assert await take_snapshot(root, store, checker) is None
    (root / "b.ml").write_text("let y = A.x + 1\n")  # never compiles alone: A is elsewhere
    unknown = await take_snapshot(root, store, checker)
    assert unknown is not None and unknown.state.status == UNKNOWN
