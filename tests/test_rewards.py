"""`ocaml_ai_ls.rewards` with real dune on a tiny project: each grade of the table, on
rows `dataset export` wrote (their provenance rebuilds the before state), through
local shadows and through a real `ces serve`, in TRL's calling convention."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocaml_ai_ls import cli
from ocaml_ai_ls.rewards import Grader, completion_text, make_reward

from .test_ces import serving

pytestmark = pytest.mark.skipif(shutil.which("dune") is None, reason="needs dune")

CALC = Path(__file__).resolve().parent / "eval" / "tasks" / "calc"


def block(search: str, replace: str, path: str = "lib/calc.ml") -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


CUBE = block("let square x = x * x", "let square x = x * x\n\nlet cube x = x * x * x")
#: The before state of the second task has `triple` (an override), the project not.
TRIPLE = (CALC / "lib" / "calc.ml").read_text() + "\nlet triple x = x * 3\n"


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Two tasks over a copy of calc exported as rows: one checked by its tests, one
    (with `triple` only in its overrides) by the type-check alone."""
    base = tmp_path_factory.mktemp("rewards")
    shutil.copytree(CALC, base / "calc")
    tasks = base / "tasks.jsonl"
    tested = {
        "id": "cube",
        "project": "calc",
        "instruction": "add cube",
        "location": {"path": "lib/calc.ml", "line": 6},
        "checks": {"typecheck": True, "tests": True},
        "gold_diff": CUBE,
    }
    typed = {
        "id": "triple",
        "project": "calc",
        "instruction": "write triple as 3 * x",
        "files": {"lib/calc.ml": TRIPLE},
        "checks": {"typecheck": True, "tests": False},
        "gold_diff": block("let triple x = x * 3", "let triple x = 3 * x"),
    }
    tasks.write_text(json.dumps(tested) + "\n" + json.dumps(typed) + "\n")
    assert (
        cli.main(
            [
                "dataset",
                "export",
                str(tasks),
                "--out",
                str(base / "out"),
                "--format",
                "prompt-completion",
            ]
        )
        == 0
    )
    lines = (base / "out" / "test.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


#: (row, completion, reward): every grade of the table.
CASES: list[tuple[int, Any, float]] = [
    (0, "I would rather not.", 0.0),  # no edit
    (0, block("let nothing_like_this = 0", "let x = 1"), 0.0),  # does not apply
    (0, block("let double x = x * 2", "let double x = x * 2"), 0.0),  # changes nothing
    (0, block("let square x = x * x", "let square x = x *"), 0.25),  # applies, no parse
    (0, block("let square x = x * x", "let square x = x *. x"), 0.5),  # type error
    (0, block("let double x = x * 2", "let double x = x * 3"), 0.75),  # tests fail
    (0, [{"role": "assistant", "content": f"Added cube.\n\n{CUBE}"}], 1.0),  # passes
    (1, block("let triple x = x * 3", "let triple x = 3 * x"), 1.0),  # on the override
    (1, block("let double x = x * 2", "let double x = x * 3"), 1.0),  # no tests: types
    (1, block("let triple x = x * 3", "let triple x = x * 3."), 0.5),
]


def test_completions_in_either_shape() -> None:
    assert completion_text("a") == "a"
    assert completion_text([{"role": "assistant", "content": "b"}]) == "b"
    assert completion_text([]) == completion_text(None) == ""


def test_every_grade_through_local_shadows_two_at_a_time(rows: list[dict[str, Any]]) -> None:
    assert [r["provenance"]["id"] for r in rows] == ["cube", "triple"]
    with Grader(workers=2) as grader:
        reward = make_reward(grader)
        got = reward(
            prompts=[rows[i]["prompt"] for i, _, _ in CASES],
            completions=[c for _, c, _ in CASES],
            completion_ids=[[0]] * len(CASES),
            provenance=[rows[i]["provenance"] for i, _, _ in CASES],
            trainer_state=None,
        )
    assert reward.__name__ == "ces_reward"
    assert got == [want for _, _, want in CASES]
    # the exported answer itself passes
    with Grader(workers=1) as grader:
        assert grader.grade_batch(
            [r["completion"] for r in rows], [r["provenance"] for r in rows]
        ) == [1.0, 1.0]


def test_a_broken_row_is_zero_not_a_crash(rows: list[dict[str, Any]]) -> None:
    with Grader(workers=1) as grader:
        assert grader.grade(CUBE, {"files": []}) == 0.0
        missing = {**rows[0]["provenance"], "project": "/nonexistent/project"}
        assert grader.grade(CUBE, missing) == 0.0
        outside = {**rows[0]["provenance"], "files": [{"path": "../evil.ml", "text": "x"}]}
        assert grader.grade(CUBE, outside) == 0.0
        assert not (Path(rows[0]["provenance"]["project"]).parent / "evil.ml").exists()
    with pytest.raises(ValueError, match="provenance"):
        make_reward(Grader(workers=1))(completions=["x"])


@pytest.fixture(scope="module")
def ces_url(rows: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = Path(rows[0]["provenance"]["project"])
    with serving(root, tmp_path_factory.mktemp("ces"), "--workers", "2") as service:
        yield service.url


def test_every_grade_through_ces_serve(rows: list[dict[str, Any]], ces_url: str) -> None:
    with Grader(url=ces_url, workers=2) as grader:
        got = grader.grade_batch(
            [c for _, c, _ in CASES], [rows[i]["provenance"] for i, _, _ in CASES]
        )
    assert got == [want for _, _, want in CASES]


def test_the_reward_and_eval_agree_on_what_passes(tmp_path: Path) -> None:
    """The scripted model's first answers to the harness's tasks, graded by the reward
    on each task's before state: 1.0 exactly where `eval` passed them before repair."""
    from ocaml_ai_ls.dataset.episodes import Episode
    from ocaml_ai_ls.dataset.export import provenance
    from ocaml_ai_ls.eval.runner import read_attempts
    from ocaml_ai_ls.eval.tasks import load_tasks
    from tests.test_eval_runner import ANSWERS, TASKS, TaskModel, run_eval

    out = tmp_path / "eval"
    with TaskModel(ANSWERS) as model:
        done = run_eval(out, model.base_url, "--record-answers")
    assert done.returncode == 0, done.stderr
    attempts = {a["task"]: a for a in read_attempts(out / "attempts.jsonl")}
    calls = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    first = {c["task"]: c["answers"][0] for c in calls if c["round"] == 0}
    tasks = {t.id: t for t in load_tasks(TASKS)}
    ids = sorted(first)
    rows = [provenance(Episode(tasks[i], None, "test"), []) for i in ids]
    with Grader(workers=2) as grader:
        rewards = dict(zip(ids, grader.grade_batch([first[i] for i in ids], rows), strict=True))
    assert rewards == {
        "correct": 1.0,
        "garbage": 0.0,
        "no-apply": 0.0,
        "repaired": 0.5,  # its first answer is a type error (the repair passes)
        "test-failure": 0.75,
    }
    assert {i for i in ids if rewards[i] == 1.0} == {
        i for i in ids if attempts[i]["passed_before_repair"]
    }
