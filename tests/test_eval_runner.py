"""`ocaml-ai-ls eval` end to end: the task set of `tests/eval/tasks/` (one correct
answer, a type error fixed by a repair round, a test failure, an answer that does not
apply, a garbage answer) through the real pipeline and real dune, against a scripted
model that answers each task by the marker in its instruction (so the order in which
two workers ask does not matter). The report's numbers are the ones worked out by
hand below; an interrupted run resumed gives the same report; recorded answers
replayed without a model give the same outcomes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from ocaml_ai_ls.config import ModelSettings, SettingsLayers
from ocaml_ai_ls.eval.replay import ReplayProvider, load_answers
from ocaml_ai_ls.eval.runner import (
    ArmSpec,
    EvalError,
    attempt_record,
    make_working_copy,
    read_attempts,
    request_for,
    select_arms,
)
from ocaml_ai_ls.eval.tasks import load_tasks
from ocaml_ai_ls.providers.base import ChatMessage, ModelError
from ocaml_ai_ls.request import GenerateResult
from tests.editor import TEST_CACHE
from tests.model_server import Reply, ScriptedModel

TASKS = Path(__file__).parent / "eval" / "tasks" / "tasks.jsonl"
CALC = "lib/calc.ml"


def block(old: str, new: str, path: str = CALC) -> str:
    return f"{path}\n<<<<<<< SEARCH\n{old}\n=======\n{new}\n>>>>>>> REPLACE\n"


SQUARE = "let square x = x * x"
BROKEN_SQUARE = "let square x = string_of_int x * x"  # a type error
#: The model's answers per task (by the marker in the instruction), one per round.
ANSWERS: dict[str, list[str]] = {
    "[correct]": [block("let double x = x * 2", "let double x = x * 2\n\nlet triple x = x * 3")],
    "[repaired]": [
        block(SQUARE, BROKEN_SQUARE),
        block(BROKEN_SQUARE, "let square x = x * x * 1"),
    ],
    # type-checks, but `double 4 = 8` fails in test/test_calc.ml
    "[test-failure]": [block("let double x = x * 2", "let double x = x + 2")],
    "[no-apply]": [
        block("let rec fib n =\n  if n < 2 then n else fib (n - 1) + fib (n - 2)", "(* fib *)")
    ]
    * 2,
    "[garbage]": ["Sure! These notes are a placeholder; nothing needs to change."] * 2,
}


class TaskModel(ScriptedModel):
    """Answers by the task marker found in the conversation's first user message; the
    round is the number of assistant turns so far (a repair continues the chat)."""

    def __init__(
        self, answers: Mapping[str, list[str]], delays: Mapping[str, float] | None = None
    ) -> None:
        super().__init__()
        self.answers = answers
        self.delays = dict(delays or {})
        self.set_default(Reply(answers="unused"))

    def _answer(self, handler: BaseHTTPRequestHandler, reply: Reply, body: dict[str, Any]) -> None:
        messages = body.get("messages", [])
        first = next((m["content"] for m in messages if m["role"] == "user"), "")
        round_ = sum(1 for m in messages if m["role"] == "assistant")
        marker = next((m for m in self.answers if m in first), None)
        if marker is None or round_ >= len(self.answers[marker]):
            self._send(handler, 500, json.dumps(self._error_json(500, "no scripted answer")))
            return
        if marker in self.delays:
            self._wait(handler, self.delays[marker])
        super()._answer(handler, Reply(answers=self.answers[marker][round_]), body)


@pytest.fixture
def task_model() -> Iterator[TaskModel]:
    server = TaskModel(ANSWERS).start()
    try:
        yield server
    finally:
        server.stop()


def env(base_url: str | None) -> dict[str, str]:
    out = dict(os.environ)
    out.update(XDG_CACHE_HOME=str(TEST_CACHE), XDG_DATA_HOME=str(TEST_CACHE / "data"))
    out.pop("OCAML_AI_MODEL", None)
    out["OCAML_AI_BASE_URL"] = base_url or "http://127.0.0.1:9/v1"  # nothing listens there
    return out


def eval_cmd(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ocaml_ai_ls",
        "eval",
        str(TASKS),
        "--samples",
        "1",
        "--workers",
        "2",
        "--out",
        str(out),
        *extra,
    ]


def run_eval(out: Path, base_url: str | None, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        eval_cmd(out, *extra), env=env(base_url), capture_output=True, text=True, timeout=120
    )


def outcomes(out: Path) -> dict[str, tuple[Any, ...]]:
    """Per task: what the attempt came to (everything but times and tokens)."""
    keys = ("applied", "parsed", "typechecked", "tests", "passed", "passed_before_repair")
    return {
        a["task"]: (*(a[k] for k in keys), a["repair_round"], a["status"])
        for a in read_attempts(out / "attempts.jsonl")
    }


#: Per task: applied, parsed, typechecked, tests, passed, passed before repair,
#: the round of the best candidate, its status.
EXPECTED = {
    "correct": (True, True, True, True, True, True, 0, "ok"),
    "repaired": (True, True, True, True, True, False, 1, "ok"),
    "test-failure": (True, True, True, False, False, False, 0, "test_failure"),
    "no-apply": (False, False, False, False, False, False, None, None),
    "garbage": (False, False, False, None, False, False, None, None),
}


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted run of the task set, its answers recorded."""
    out = tmp_path_factory.mktemp("eval") / "full"
    with TaskModel(ANSWERS) as model:
        done = run_eval(out, model.base_url, "--record-answers")
    assert done.returncode == 0, done.stderr
    return out


def rates(out: Path) -> dict[str, Any]:
    """The report's figures per arm that do not depend on time (nor on replaying)."""
    report = json.loads((out / "report.json").read_text())
    return {
        arm: {
            "attempts": figures["attempts"],
            "rates": {k: (r["successes"], r["n"]) for k, r in figures["rates"].items()},
            "pass@1": figures["pass_at_1"]["value"],
            "pass@k": figures["pass_at_k"]["value"],
            "repair": {k: figures["repair_gain"][k] for k in ("before", "after", "value")},
            "statuses": figures["statuses"],
            "errors": figures["errors"],
        }
        for arm, figures in report["per_arm"].items()
    }


#: Worked out by hand from EXPECTED: 3 of 5 answers applied (correct, repaired,
#: test-failure), all 3 parse and type-check; of the 4 tasks with tests 2 pass; 2 of 5
#: pass (pass@1 = 0.4 with one sample), 1 of them only after its repair round.
REPORT = {
    "default": {
        "attempts": 5,
        "rates": {
            "apply": (3, 5),
            "parse": (3, 5),
            "typecheck": (3, 5),
            "tests": (2, 4),
            "pass": (2, 5),
        },
        "pass@1": 0.4,
        "pass@k": 0.4,
        "repair": {"before": 0.2, "after": 0.4, "value": 0.2},
        "statuses": {"None": 2, "ok": 2, "test_failure": 1},
        "errors": 0,
    }
}


def test_the_report_gives_the_known_outcomes_exactly(full_run: Path) -> None:
    assert outcomes(full_run) == EXPECTED
    assert rates(full_run) == REPORT
    report = json.loads((full_run / "report.json").read_text())
    assert (report["k"], report["arms"], report["replayed"]) == (1, ["default"], False)
    table = (full_run / "report.md").read_text()
    assert "| apply rate | 60% [" in table and "| pass@1 | 40% [" in table
    attempts = read_attempts(full_run / "attempts.jsonl")
    assert all(not a["replayed"] and a["error"] is None for a in attempts)
    # verification and the model were timed; no check ran for what never applied
    by_task = {a["task"]: a for a in attempts}
    assert by_task["correct"]["ms"]["verify"] > 0 and by_task["correct"]["ms"]["model"] > 0
    assert by_task["garbage"]["ms"]["verify"] is None
    assert {p.name for p in full_run.iterdir()} >= {
        "attempts.jsonl",
        "answers.jsonl",
        "report.json",
        "report.md",
        "rates.png",
    }
    # the task's working copies and shadows are gone once its attempts are done
    assert not [p for p in (full_run / "work").glob("*") if p.name != "shadows"]


def test_an_interrupted_run_resumes_to_the_same_report(full_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumed"
    slow = {m: 2.0 for m in ANSWERS if m != "[correct]"}
    with TaskModel(ANSWERS, slow) as model:
        proc = subprocess.Popen(
            eval_cmd(out),
            env=env(model.base_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        attempts = out / "attempts.jsonl"
        deadline = time.monotonic() + 60
        while not (attempts.exists() and attempts.read_text().count("\n") >= 1):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    # the attempts in flight (the slow "repaired", and the one started when "correct"
    # landed) were let finish; none was started after Ctrl-C
    partial = outcomes(out)
    assert {"correct", "repaired"} <= set(partial) and "garbage" not in partial, stderr
    assert (out / "report.json").exists() and stdout.strip()
    with TaskModel(ANSWERS) as model:
        again = run_eval(out, model.base_url)
        asked = {m["content"] for r in model.requests for m in r.get("messages", [])[1:2]}
    assert again.returncode == 0, again.stderr
    assert not any("[correct]" in text or "[repaired]" in text for text in asked)
    assert outcomes(out) == outcomes(full_run) == EXPECTED
    assert rates(out) == rates(full_run)


def test_attempts_in_flight_are_cancelled_after_the_grace_period(tmp_path: Path) -> None:
    out = tmp_path / "cancelled"
    stuck = {m: 30.0 for m in ANSWERS if m != "[correct]"}
    with TaskModel(ANSWERS, stuck) as model:
        proc = subprocess.Popen(
            eval_cmd(out, "--grace", "0.3"),
            env=env(model.base_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        attempts = out / "attempts.jsonl"
        deadline = time.monotonic() + 60
        while not (attempts.exists() and attempts.read_text().count("\n") >= 1):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        interrupted = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - interrupted
        assert model.wait_for_disconnect(5)  # the model calls in flight were hung up
    assert proc.returncode == 130, stderr
    assert took < 10, stderr
    assert set(outcomes(out)) == {"correct"}  # cancelled attempts are not recorded


def test_recorded_answers_replay_without_a_model(full_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "replayed"
    done = run_eval(out, None, "--replay", str(full_run / "answers.jsonl"))
    assert done.returncode == 0, done.stderr
    assert outcomes(out) == EXPECTED
    assert all(a["replayed"] for a in read_attempts(out / "attempts.jsonl"))
    assert rates(out) == rates(full_run) == REPORT
    report = json.loads((out / "report.json").read_text())
    assert report["replayed"] and report["replayed_arms"] == ["default"]
    assert "**Replayed:**" in done.stdout  # the Markdown table printed


# -- the parts, in process ---------------------------------------------------------


async def test_a_replay_without_the_key_is_a_model_error_naming_it(tmp_path: Path) -> None:
    answers = tmp_path / "answers.jsonl"
    record = {"task": "t", "arm": "a", "sample": 0, "round": 0, "answers": ["x"], "model": "m"}
    answers.write_text(json.dumps(record) + "\n" + '{"task": "t", "arm"')  # a cut last line
    provider = ReplayProvider(load_answers(answers), "t", "a", 0)
    reply = await provider.complete([ChatMessage("user", "hi")])
    assert (reply.answers, reply.model) == (("x",), "m")
    with pytest.raises(ModelError, match=r"task 't', arm 'a', sample 0, round 1"):
        await provider.complete([ChatMessage("user", "again")])
    with pytest.raises(ModelError, match="sample 1, round 0"):
        await ReplayProvider(answers, "t", "a", 1).complete([])


def test_a_line_cut_by_a_kill_is_dropped_and_the_last_record_wins(tmp_path: Path) -> None:
    path = tmp_path / "attempts.jsonl"
    first = {"task": "t", "arm": "a", "sample": 0, "passed": False}
    second = {**first, "passed": True}
    path.write_text(f'{json.dumps(first)}\n{json.dumps(second)}\n{{"task": "u", "ar')
    assert read_attempts(path) == [second]
    assert path.read_text().endswith("}\n")  # the next record starts on its own line


def test_arms_come_from_the_settings_by_name() -> None:

    plain, _ = SettingsLayers().build()
    [arm] = select_arms(plain, None)
    assert (arm.name, arm.model) == ("default", plain.model)
    split, errors = SettingsLayers(
        file={"routing": {"arms": [{"name": "base"}, {"name": "diff", "strategy": "unified_diff"}]}}
    ).build()
    assert not errors
    assert [a.name for a in select_arms(split, None)] == ["base", "diff"]
    [diff] = select_arms(split, ["diff"])
    assert diff.model.strategy == "unified_diff"
    with pytest.raises(EvalError, match=r"unknown arm.*nope.*configured: base, diff"):
        select_arms(split, ["nope"])


def test_the_before_state_is_a_copy_with_the_overrides(tmp_path: Path) -> None:

    tasks = {t.id: t for t in load_tasks(TASKS)}
    copy = make_working_copy(tasks["no-apply"], tmp_path / "copy")
    assert not (copy / "lib" / "legacy.ml").exists()  # null: absent before
    assert (tasks["no-apply"].project / "lib" / "legacy.ml").exists()  # never touched
    copy = make_working_copy(tasks["garbage"], tmp_path / "copy")
    assert (copy / "lib" / "legacy.ml").exists()  # a fresh copy each time
    assert (copy / "lib" / "notes.ml").read_text().startswith("(* Notes")
    req = request_for(tasks["garbage"], copy)
    assert req.uri.endswith("/lib/notes.ml") and req.candidates == 1


def test_an_attempt_record_judges_the_first_round_apart() -> None:

    [task] = [t for t in load_tasks(TASKS) if t.id == "garbage"]
    result = GenerateResult(id="x", error="model down")
    record = attempt_record(
        result, task, ArmSpec("a", ModelSettings()), 0, replayed=True, model_ms=None
    )
    assert record["error"] == "model down" and record["replayed"] is True
    assert (record["applied"], record["passed"], record["tests"]) == (False, False, None)
    assert set(record["ms"]) == {
        "context",
        "first_token",
        "model",
        "parse",
        "apply",
        "verify",
        "total",
    }
