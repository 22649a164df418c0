"""`ocaml-ai-ls eval` speed with an instant model (issue #8's figures).

N tasks (20) on a copy of the harness's tiny dune project (`tests/eval/tasks/calc`),
each asking for a one-line function the model (`tests/model_server.py`, answering at
once, by the task's marker) adds with one SEARCH/REPLACE block; every answer
type-checks in a shadow of the task's working copy (no tests, no repair). The runner
is the one `ocaml-ai-ls eval` uses, in-process. It prints:

- harness overhead per attempt excluding verification: total - verify - model
  (context, prompt, parse, apply, the syntax check), p50/p95;
- the harness around `generate`: the wall time per attempt the pipeline does not
  see (working copy, index scan, shadow set-up, the record written and synced);
- tasks per minute with `--workers` (2) workers, and with 1 for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import tempfile
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from benchmarks._lsp import row
from ocaml_ai_ls.config import SettingsLayers
from ocaml_ai_ls.eval.runner import EvalOptions, Runner, select_arms
from ocaml_ai_ls.eval.tasks import load_tasks
from tests.model_server import Reply, ScriptedModel

CALC = Path(__file__).resolve().parent.parent / "tests" / "eval" / "tasks" / "calc"


class Instant(ScriptedModel):
    """Answers `[tN]` with a SEARCH/REPLACE block adding `fN`."""

    def __init__(self) -> None:
        super().__init__()
        self.set_default(Reply(answers="unused"))

    def _answer(self, handler: BaseHTTPRequestHandler, reply: Reply, body: dict[str, Any]) -> None:
        first = next(m["content"] for m in body["messages"] if m["role"] == "user")
        n = first.split("[t", 1)[1].split("]", 1)[0]
        text = (
            "lib/calc.ml\n<<<<<<< SEARCH\nlet double x = x * 2\n=======\n"
            f"let double x = x * 2\n\nlet f{n} x = x + {n}\n>>>>>>> REPLACE\n"
        )
        super()._answer(handler, Reply(answers=text), body)


def write_tasks(root: Path, count: int) -> Path:
    shutil.copytree(CALC, root / "calc", ignore=shutil.ignore_patterns("_build"))
    path = root / "tasks.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i in range(count):
            task = {
                "id": f"t{i}",
                "project": "calc",
                "instruction": f"[t{i}] add f{i} after double",
                "location": {"path": "lib/calc.ml", "line": 4},
            }
            fh.write(json.dumps(task) + "\n")
    return path


async def one_run(tasks_file: Path, out: Path, base_url: str, workers: int) -> tuple[float, Any]:
    settings, errors = SettingsLayers(
        file={
            "model": {"base_url": base_url, "model": "instant", "retries": 0},
            "verify": {"repair_rounds": 0},
        }
    ).build()
    assert not errors, errors
    tasks = load_tasks(tasks_file)
    opts = EvalOptions(
        tasks=tasks, out=out, settings=settings, arms=select_arms(settings, None), workers=workers
    )
    started = time.perf_counter()
    summary = await Runner(opts, progress=io.StringIO()).run()
    return time.perf_counter() - started, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="eval-speed-") as tmp, Instant() as model:
        root = Path(tmp)
        tasks_file = write_tasks(root, args.tasks)
        results = {}
        for workers in dict.fromkeys((args.workers, 1)):
            seconds, summary = asyncio.run(
                one_run(tasks_file, root / f"out-{workers}", model.base_url, workers)
            )
            results[workers] = (seconds, summary)
        seconds, summary = results[args.workers]
        attempts = summary.attempts
        statuses = sorted({a["status"] for a in attempts})
        print(
            f"{len(attempts)} attempts, statuses {statuses}, passed "
            f"{sum(a['passed'] for a in attempts)}"
        )
        ms = [a["ms"] for a in attempts]
        overhead = [m["total"] - (m["verify"] or 0) - (m["model"] or 0) for m in ms]
        print(row("overhead per attempt (total-verify-model)", overhead))
        print(row("verify (type-check in a shadow)", [m["verify"] or 0 for m in ms]))
        print(row("model call (instant server)", [m["model"] or 0 for m in ms]))
        print(row("generate total", [m["total"] for m in ms]))
        around = seconds * 1000 * args.workers / len(attempts) - sum(m["total"] for m in ms) / len(
            attempts
        )
        print(f"{'harness around generate (mean, per attempt)':<44} {around:8.2f} ms")
        for workers, (secs, summ) in results.items():
            per_minute = len(summ.attempts) / secs * 60
            print(
                f"{f'tasks per minute, {workers} worker(s)':<44} {per_minute:8.1f}"
                f"   ({len(summ.attempts)} tasks in {secs:.2f} s)"
            )


if __name__ == "__main__":
    main()
