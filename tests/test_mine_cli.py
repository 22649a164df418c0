"""`ocaml-ai-ls snapshot mine` over a real git-backed store (hand-made build states, no
dune needed), and the two-step instruction writing against a scripted model server."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from ocaml_ai_ls import cli
from ocaml_ai_ls.snapshots.describe import CONDENSE_USER, MAX_FAILURES_IN_A_ROW
from ocaml_ai_ls.snapshots.mine_cli import add_mine_parser, default_heldout, run_mine
from ocaml_ai_ls.snapshots.miner import collect
from ocaml_ai_ls.snapshots.store import BuildState, Snapshot, SnapshotStore
from tests.model_server import Reply, ScriptedModel
from tests.test_miner import (
    EDIT1_DIFF,
    EDIT2_DIFF,
    NO_CONTEXT,
    REPAIR1_DIFF,
    SESSION,
    T0,
    TYPE_ERROR,
    State,
    timeline,
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The endpoint comes from the root's settings, not the developer's environment."""
    for name in ("OCAML_AI_BASE_URL", "OCAML_AI_MODEL", "OCAML_AI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def record(root: Path, states: Sequence[State]) -> list[Snapshot]:
    """Take one snapshot per state (in the default store: the tests' XDG_DATA_HOME)."""
    root.mkdir(parents=True, exist_ok=True)
    store = SnapshotStore(root)
    for i, (status, files, errors) in enumerate(states):
        assert store.take(files, BuildState(status, errors), time=T0 + 60 * i) is not None
    return store.log()


def run(argv: Sequence[str]) -> int:
    """The command in-process, parsed by the parser `snapshot` gets."""
    parser = argparse.ArgumentParser(prog="ocaml-ai-ls snapshot")
    add_mine_parser(parser.add_subparsers(dest="snapshot_command"))
    return run_mine(parser.parse_args(["mine", *argv]))


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def settings(root: Path, model: ScriptedModel | None = None, heldout_share: float = 0.0) -> None:
    text = f"[snapshots]\nheldout_share = {heldout_share}\n"
    if model is not None:
        text += f'[model]\nbase_url = "{model.base_url}"\nretries = 0\nstream = false\n'
    (root / ".ocaml-ai.toml").write_text(text)


def test_mine_reads_the_store_and_writes_the_examples(tmp_path: Path) -> None:
    root = tmp_path / "project"
    log = record(root, SESSION)
    assert [s.state.status for s in log] == [s for s, _, _ in SESSION]
    settings(root)
    out = tmp_path / "data.jsonl"
    assert run(["--root", str(root), "--out", str(out), "--no-model"]) == 0
    mined = rows(out)
    assert [(r["kind"], r["episode"]) for r in mined] == [
        ("edit", log[0].id),
        ("repair", log[0].id),
        ("edit", log[3].id),
        ("repair", log[3].id),
    ]
    assert [r["diff"] for r in mined[:3]] == [EDIT1_DIFF, REPAIR1_DIFF, EDIT2_DIFF]
    assert mined[1]["errors"] == [asdict(TYPE_ERROR)]
    assert [r["time"] for r in mined] == ["2024-05-01T12:02:00Z"] * 2 + ["2024-05-01T12:05:00Z"] * 2
    assert all(r["instruction"] == "" and r["instruction_source"] == "none" for r in mined)
    assert "### Target: `area`" in mined[0]["context"]
    # the same examples as mining the timeline in memory: ids depend on content only
    expected, _ = collect(timeline(SESSION), NO_CONTEXT)
    assert [r["id"] for r in mined] == [e.id for e in expected]
    assert [r["files_before"] for r in mined] == [e.files_before for e in expected]
    assert default_heldout(out) == tmp_path / "data.heldout.jsonl"
    assert rows(default_heldout(out)) == []


def test_limits_from_the_command_line_and_the_heldout_path(tmp_path: Path) -> None:
    root = tmp_path / "project"
    record(root, SESSION)
    settings(root, heldout_share=0.999)  # everything held out
    out, held = tmp_path / "train.jsonl", tmp_path / "sub" / "held.jsonl"
    argv = ["--root", str(root), "--out", str(out), "--heldout", str(held), "--no-model"]
    assert run([*argv, "--max-files", "1"]) == 0
    assert rows(out) == []
    assert [r["kind"] for r in rows(held)] == ["edit", "repair"]
    assert run([*argv, "--max-lines", "0"]) == 2


def test_no_snapshots_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    out = tmp_path / "data.jsonl"
    assert run(["--root", str(root), "--out", str(out), "--no-model"]) == 1
    assert "no snapshots" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif("snapshot" not in cli.COMMANDS, reason="`snapshot` is not wired into cli.py")
def test_mine_as_a_command(tmp_path: Path) -> None:
    root = tmp_path / "project"
    record(root, SESSION)
    settings(root)
    out = tmp_path / "data.jsonl"
    argv = ["snapshot", "mine", "--root", str(root), "--out", str(out), "--no-model"]
    done = subprocess.run(
        [sys.executable, "-m", "ocaml_ai_ls", *argv],
        cwd=REPO,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert [r["kind"] for r in rows(out)] == ["edit", "repair", "edit", "repair"]
    assert "2 edits and 2 repairs" in done.stderr


# -- the model --------------------------------------------------------------------


def _contents(request: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in request["messages"])


def test_the_instruction_is_written_in_two_steps(tmp_path: Path, model: ScriptedModel) -> None:
    root = tmp_path / "project"
    record(root, SESSION[:3])
    settings(root, model)
    description = "The area of a rectangle is now its absolute value, so it is never negative."
    model.enqueue(
        description,
        '"Make rectangle areas non-negative."\nThis keeps the area positive.',
        "The type error in area is fixed by using float multiplication.",
        "fix the type error in area by using float multiplication for every rectangle",
    )
    out = tmp_path / "data.jsonl"
    assert run(["--root", str(root), "--out", str(out)]) == 0
    first, second, third, _ = model.requests
    assert EDIT1_DIFF.rstrip("\n") in _contents(first)
    assert "Describe this change in detail" in _contents(first)
    assert description in _contents(second)
    assert EDIT1_DIFF not in _contents(second)
    assert "at most 12 words" in _contents(second)
    assert CONDENSE_USER.split("{")[0].strip() in _contents(second)
    assert REPAIR1_DIFF.rstrip("\n") in _contents(third)
    assert TYPE_ERROR.message in _contents(third)  # a repair's errors go with its diff
    edit, repair = rows(out)
    assert (edit["instruction"], edit["instruction_source"]) == (
        "Make rectangle areas non-negative",
        "model",
    )
    assert repair["instruction"] == (
        "fix the type error in area by using float multiplication for every"
    )
    assert repair["instruction_source"] == "model"
    assert "make rectangle" not in edit["context"].lower()  # context made from BEFORE files


def test_a_failing_model_leaves_the_instruction_empty(tmp_path: Path, model: ScriptedModel) -> None:
    root = tmp_path / "project"
    record(root, SESSION)
    settings(root, model)
    model.enqueue(
        Reply(status=500),  # the first example's description
        "Adds a volume function.",  # the second's description...
        Reply(status=503),  # ...and its condensed instruction fail
        "It changes the area.",
        "make areas non-negative",  # the third succeeds
    )
    out = tmp_path / "data.jsonl"
    assert run(["--root", str(root), "--out", str(out)]) == 0
    assert [(r["instruction"], r["instruction_source"]) for r in rows(out)] == [
        ("", "none"),
        ("", "none"),
        ("make areas non-negative", "model"),
        ("", "none"),  # nothing scripted: the server answers 500
    ]


def test_the_model_is_not_asked_again_after_failures_in_a_row(
    tmp_path: Path, model: ScriptedModel
) -> None:
    root = tmp_path / "project"
    record(root, SESSION)
    settings(root, model)
    out = tmp_path / "data.jsonl"
    assert run(["--root", str(root), "--out", str(out)]) == 0  # nothing scripted: all 500
    assert len(model.requests) == MAX_FAILURES_IN_A_ROW
    assert [r["instruction_source"] for r in rows(out)] == ["none"] * 4
