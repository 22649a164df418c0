"""`ocaml-ai-ls dataset export` over a real snapshot store and `snapshot mine`'s files:
the prompt is the pipeline's on the before state, the answer reads back to the after
state, the split is the miner's, and failing rows are counted, not written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from ocaml_ai_ls import cli
from ocaml_ai_ls.edits.parse import parse_answer
from ocaml_ai_ls.prompt import system_prompt
from ocaml_ai_ls.snapshots.store import SnapshotStore
from ocaml_ai_ls.verify.diffs import files_to_check
from tests.editor import copy_example
from tests.test_mine_cli import record, rows
from tests.test_mine_cli import run as mine
from tests.test_miner import SESSION

TASKS = Path(__file__).resolve().parent / "eval" / "tasks"


@pytest.fixture(autouse=True)
def _no_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OCAML_AI_BASE_URL", "OCAML_AI_MODEL", "OCAML_AI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def mined(tmp_path: Path) -> tuple[Path, Path]:
    """The shapes project with the scripted session in its store, mined (no model)."""
    root = copy_example(tmp_path)
    record(root, SESSION)
    (root / ".ocaml-ai.toml").write_text("[snapshots]\nheldout_share = 0.0\n")
    data = tmp_path / "data.jsonl"
    assert mine(["--root", str(root), "--out", str(data), "--no-model"]) == 0
    return root, data


def export(*argv: str) -> int:
    return cli.main(["dataset", "export", *argv])


def before_state(tmp_path: Path, provenance: dict[str, Any]) -> Path:
    """The row's before state rebuilt from its provenance alone, as a reward does."""
    dest = tmp_path / "rebuilt"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(provenance["project"], dest)
    for item in provenance["files"]:
        target = dest / item["path"]
        if item["text"] is None:
            target.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(item["text"])
    return dest


@pytest.mark.parametrize("strategy", ["search_replace", "unified_diff", "whole_file"])
def test_rows_are_the_pipelines_prompt_and_the_change_in_its_format(
    tmp_path: Path, strategy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root, data = mined(tmp_path)
    out = tmp_path / "out"
    assert (
        export(
            str(data),
            "--out",
            str(out),
            "--project",
            str(root),
            "--keep-empty",
            "--strategy",
            strategy,
        )
        == 0
    )
    assert "4 rows (4 train, 0 test); round trip 4/4" in capsys.readouterr().err
    examples = rows(data)
    exported = rows(out / "train.jsonl")
    assert rows(out / "test.jsonl") == []
    log = SnapshotStore(root).log()
    for example, row in zip(examples, exported, strict=True):
        system, user, assistant = row["messages"]
        assert [system["role"], user["role"], assistant["role"]] == ["system", "user", "assistant"]
        assert system["content"] == system_prompt(strategy)
        # the miner sliced the context on the full before snapshot at the same place
        assert example["context"] and example["context"] in user["content"]
        p = row["provenance"]
        assert (p["source"], p["id"], p["kind"]) == ("mined", example["id"], example["kind"])
        assert (p["snapshot_before"], p["snapshot_after"]) == (example["before"], example["after"])
        assert p["status_after"] == "green" and p["before_state"] == "snapshot"
        assert p["paths"] == sorted(example["files_after"])
        # the answer, parsed and applied by the pipeline's code to the before state
        # rebuilt from the provenance, gives the after state
        rebuilt = before_state(tmp_path, p)
        assert parse_answer(assistant["content"]).usable
        assert files_to_check(assistant["content"], rebuilt) == example["files_after"]
    # the second edit opens on GREEN3, whose lib/helpers.ml the workspace never had
    # on disk: the before state is the snapshot's, whole
    third = exported[2]["provenance"]
    assert third["snapshot_before"] == log[3].id
    assert {"path": "lib/helpers.ml"} in [{"path": f["path"]} for f in third["files"]]
    assert "### Instruction\n\n" in exported[0]["messages"][1]["content"]


def test_prompt_completion_keeps_the_miners_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, data = mined(tmp_path)
    # the second episode held out (as a share would, by the hash of the episode), and
    # instructions, as a model would write them
    examples = [{**r, "instruction": f"change {r['kind']}"} for r in rows(data)]
    data.write_text("".join(json.dumps(r) + "\n" for r in examples[:2]))
    data.with_name("data.heldout.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in examples[2:])
    )
    heldout = examples[2:]
    out = tmp_path / "out"
    assert (
        export(
            str(data), "--out", str(out), "--project", str(root), "--format", "prompt-completion"
        )
        == 0
    )
    train, test = rows(out / "train.jsonl"), rows(out / "test.jsonl")
    assert [r["provenance"]["id"] for r in test] == [e["id"] for e in heldout]
    assert [r["provenance"]["id"] for r in train] == [e["id"] for e in rows(data)]
    for row in train + test:
        assert list(row) == ["prompt", "completion", "provenance"]
        assert [m["role"] for m in row["prompt"]] == ["system", "user"]
        assert [m["role"] for m in row["completion"]] == ["assistant"]
        assert "### Instruction\nchange " in row["prompt"][1]["content"]
    episodes = {r["provenance"]["episode"] for r in train}
    assert episodes.isdisjoint(r["provenance"]["episode"] for r in test)


def test_failing_rows_are_left_out_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, data = mined(tmp_path)
    examples = rows(data)
    # one change deletes a file (no edit format can say so), one has no instruction
    examples[0]["files_after"] = {**examples[0]["files_after"], "bin/main.ml": None}
    for e in examples:
        e["instruction"] = "do it"
    examples[3]["instruction"] = ""
    data.write_text("".join(json.dumps(e) + "\n" for e in examples))
    out = tmp_path / "out"
    assert export(str(data), "--out", str(out), "--project", str(root)) == 0
    err = capsys.readouterr().err
    assert "2 rows (2 train, 0 test); round trip 2/3" in err
    assert "left out 1 failing the round trip (1 the change deletes bin/main.ml)" in err
    assert "skipped 1 no instruction" in err
    assert [r["provenance"]["id"] for r in rows(out / "train.jsonl")] == [
        examples[1]["id"],
        examples[2]["id"],
    ]


def test_eval_tasks_with_a_gold_diff_go_to_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "calc"
    shutil.copytree(TASKS / "calc", project)
    gold = (
        "lib/calc.ml\n<<<<<<< SEARCH\nlet square x = x * x\n=======\n"
        "let square x = x * x\n\nlet cube x = x * x * x\n>>>>>>> REPLACE\n"
    )
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(
        json.dumps(
            {
                "id": "cube",
                "project": "calc",
                "instruction": "add cube",
                "checks": {"typecheck": True, "tests": True},
                "location": {"path": "lib/calc.ml", "line": 6},
                "gold_diff": gold,
            }
        )
        + "\n"
        + json.dumps({"id": "no-gold", "project": "calc", "instruction": "x"})
        + "\n"
    )
    out = tmp_path / "out"
    assert export(str(tasks), "--out", str(out)) == 0
    assert "1 rows (0 train, 1 test); round trip 1/1; skipped 1 no gold diff" in (
        capsys.readouterr().err
    )
    (row,) = rows(out / "test.jsonl")
    assert rows(out / "train.jsonl") == []
    p = row["provenance"]
    assert (p["source"], p["id"], p["tests"], p["files"]) == ("eval", "cube", True, [])
    assert p["project"] == str(project.resolve())
    assert "let cube x = x * x * x" in row["messages"][2]["content"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json\n", "not JSON"),
        ('{"a": 1}\n', "neither a mined example"),
        ('{"kind": "edit", "diff": 3}\n', "id is missing or not a str"),
    ],
)
def test_bad_input_is_exit_2_with_a_message(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    assert export(str(bad), "--out", str(tmp_path / "out"), "--project", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("ocaml-ai-ls dataset export: ") and message in err
    assert export(str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o")) == 2
