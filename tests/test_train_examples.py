"""Smoke test of examples/train/: SFT and GRPO for two steps each, with TRL, on a tiny
random model and a tokenizer built from the exported rows (nothing downloaded), the
GRPO reward being `ocaml_ai_ls.rewards` with real dune.

Needs the `[train]` extra (trl, transformers, torch, datasets): skipped without it
(`pip install -e '.[train]'` to run it; see the README)."""

from __future__ import annotations

import importlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trl")
pytestmark = [
    pytest.mark.skipif(shutil.which("dune") is None, reason="needs dune"),
    pytest.mark.timeout(600),
]

from ocaml_ai_ls import cli  # noqa: E402
from tests.test_rewards import CALC, CUBE, TRIPLE, block  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "train"
#: The second row's answer: it passes there (1.0) and applies nowhere in the first.
FORCED = block("let triple x = x * 3", "let triple x = 3 * x")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two calc tasks exported as prompt-completion rows (test split)."""
    base = tmp_path_factory.mktemp("train")
    shutil.copytree(CALC, base / "calc")
    tasks = base / "tasks.jsonl"
    rows = [
        {
            "id": "cube",
            "project": "calc",
            "instruction": "add cube",
            "location": {"path": "lib/calc.ml", "line": 6},
            "checks": {"typecheck": True, "tests": True},
            "gold_diff": CUBE,
        },
        {
            "id": "triple",
            "project": "calc",
            "instruction": "write triple as 3 * x",
            "files": {"lib/calc.ml": TRIPLE},
            "checks": {"typecheck": True, "tests": False},
            "gold_diff": FORCED,
        },
    ]
    tasks.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = base / "data"
    assert (
        cli.main(
            ["dataset", "export", str(tasks), "--out", str(out), "--format", "prompt-completion"]
        )
        == 0
    )
    return out


def run(script: str, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


def history(out: Path) -> list[dict[str, Any]]:
    return list(json.loads((out / "log_history.json").read_text()))


def test_sft_two_steps_with_a_finite_loss(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "sft"
    run(
        "sft.py",
        "--data",
        str(data),
        "--split",
        "test",
        "--out",
        str(out),
        "--tiny",
        "--max-steps",
        "2",
    )
    losses = [e["loss"] for e in history(out) if "loss" in e]
    assert len(losses) == 2 and all(math.isfinite(x) and x > 0 for x in losses)
    assert (out / "model.safetensors").is_file()


def forcing_bias(data: Path) -> list[list[Any]]:
    """Generation biases that make the tiny model write FORCED token by token: each
    prefix of it, the longer the stronger (the same tokenizer grpo.py builds)."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        common, grpo = importlib.import_module("common"), importlib.import_module("grpo")
    finally:
        sys.path.remove(str(EXAMPLES))
    _, tokenizer = common.tiny_model(grpo.prompt_rows(common.load_rows(data, "test")))
    ids = [*tokenizer.encode(FORCED, add_special_tokens=False), tokenizer.eos_token_id]
    assert tokenizer.decode(ids[:-1]) == FORCED
    return [[ids[: k + 1], 20.0 * (k + 1)] for k in range(len(ids))]


def test_grpo_two_steps_with_our_rewards(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "grpo"
    bias = forcing_bias(data)
    run(
        "grpo.py",
        "--data",
        str(data),
        "--split",
        "test",
        "--out",
        str(out),
        "--tiny",
        "--max-steps",
        "2",
        "--num-generations",
        "2",
        "--workers",
        "2",
        "--max-completion-length",
        str(len(bias) + 2),
        "--generation-kwargs",
        json.dumps({"sequence_bias": bias}),
    )
    steps = [e for e in history(out) if "rewards/ces_reward/mean" in e]
    assert len(steps) == 2 and all(math.isfinite(e["loss"]) for e in steps)
    given = [
        json.loads(line)["rewards"] for line in (out / "rewards.jsonl").read_text().splitlines()
    ]
    # what our reward returned for each step's two completions is what the trainer logged:
    # 1.0 on the row FORCED passes, 0.0 on the one it does not apply to
    assert [e["rewards/ces_reward/mean"] for e in steps] == [sum(g) / len(g) for g in given]
    assert sorted(given) == [[0.0, 0.0], [1.0, 1.0]]
