"""Training data and rewards (issue #18's figures).

1. **Round trip** of exported episodes mined from real history: for each corpus
   project (`corpus.py`: lwt, base, ocaml-containers), the newest N (200) first-parent
   commits, oldest first, are recorded into a snapshot store as the timeline (the
   sources of each commit's tree; their build states alternate green, red, green...,
   so the miner finds edit episodes over two commits and repair steps over one: real
   changes of real code, with the miner's limits, 100 lines and 3 files). The
   workspace is a checkout of the newest commit. `snapshot mine` (no model, no
   context) then `dataset export --keep-empty` in each edit format: rows written /
   episodes, and the reasons of the others; seconds per row.
2. **Grading speed**: `ocaml_ai_ls.rewards` on rows exported from `tests/eval/tasks/
   calc` (checked by its tests), a batch of 24 completions (a third passing, a third
   with a type error, a third failing the tests) graded with 1 and with 2 workers in
   warm local shadows: completions per second, median of `--runs` (5).
3. **Eval agreement**: `ocaml-ai-ls eval` (in-process runner) on the harness's tasks
   (`tests/eval/tasks/tasks.jsonl`) with the scripted model of
   `tests/test_eval_runner.py`, answers recorded; then each attempt's first answer
   graded by the reward on the task's before state. Prints eval's pass rate and pass
   rate before repair beside the mean reward, and checks per task that reward 1.0 is
   exactly eval's "passed before repair" (the first answer passes).

    python -m benchmarks.training_data [--part all|roundtrip|grading|eval]
                                       [--commits 200] [--projects lwt,base,...] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.corpus import PROJECTS, clone, git

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CALC = REPO / "tests" / "eval" / "tasks" / "calc"
TASKS = REPO / "tests" / "eval" / "tasks" / "tasks.jsonl"
STRATEGIES = ("search_replace", "unified_diff", "whole_file")


# -- 1. round trip -----------------------------------------------------------------


def tree_files(repo: Path, commit: str) -> dict[str, bytes]:
    """The sources a snapshot of the commit's tree would hold."""
    from ocaml_ai_ls.snapshots.store import is_secret, is_source

    listing = git(repo, "ls-tree", "-r", "-z", commit)
    wanted: list[tuple[str, str]] = []
    for entry in listing.split("\0"):
        if not entry:
            continue
        meta, path = entry.split("\t", 1)
        mode, kind, sha = meta.split()
        if kind == "blob" and mode != "120000" and is_source(path) and not is_secret(path):
            wanted.append((path, sha))
    proc = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch"],
        input="".join(f"{sha}\n" for _, sha in wanted).encode(),
        capture_output=True,
        check=True,
    )
    out: dict[str, bytes] = {}
    data, at = proc.stdout, 0
    for path, _ in wanted:
        header_end = data.index(b"\n", at)
        size = int(data[at:header_end].split()[2])
        out[path] = data[header_end + 1 : header_end + 1 + size]
        at = header_end + 1 + size + 1
    return out


def round_trip(project: str, commits: int, work: Path) -> dict[str, Any]:
    from ocaml_ai_ls.config import Settings
    from ocaml_ai_ls.dataset.episodes import TEST, TRAIN, mined_episodes
    from ocaml_ai_ls.dataset.export import ExportReport, export
    from ocaml_ai_ls.snapshots.miner import MineOptions, mine, write_jsonl
    from ocaml_ai_ls.snapshots.store import GREEN, RED, BuildState, SnapshotStore

    repo = clone(project)
    shas = git(repo, "rev-list", "--first-parent", "-n", str(commits), "HEAD").split()[::-1]
    root = work / project
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    subprocess.run(f"git -C {repo} archive {shas[-1]} | tar -x -C {root}", shell=True, check=True)
    store = SnapshotStore(root)
    for i, sha in enumerate(shas):
        store.take(tree_files(repo, sha), BuildState(GREEN if i % 2 == 0 else RED), time=i * 60.0)
    result = mine(store, MineOptions(heldout_share=0.1, context=None))
    data = work / f"{project}.jsonl"
    write_jsonl(data, result.training)
    write_jsonl(data.with_name(f"{project}.heldout.jsonl"), result.heldout)
    out: dict[str, Any] = {"episodes": len(result.training) + len(result.heldout)}
    for strategy in STRATEGIES:
        base = Settings()
        settings = replace(base, model=replace(base.model, strategy=strategy))
        report = ExportReport()
        episodes = mined_episodes(data, root, TRAIN, report.skipped, keep_empty=True)
        episodes += mined_episodes(
            data.with_name(f"{project}.heldout.jsonl"), root, TEST, report.skipped, True
        )
        started = time.perf_counter()
        rows = list(export(episodes, settings, report))
        seconds = time.perf_counter() - started
        out[strategy] = {
            "rows": len(rows),
            "tried": report.exported + report.round_trip_failures,
            "failed": dict(report.failed),
            "s_per_row": seconds / max(1, len(episodes)),
        }
    return out


# -- 2. grading speed ----------------------------------------------------------------


def calc_rows(work: Path) -> list[dict[str, Any]]:
    """One exported row over a copy of calc, checked by its tests."""
    from ocaml_ai_ls import cli

    shutil.copytree(CALC, work / "calc", ignore=shutil.ignore_patterns("_build"))
    gold = block("let square x = x * x", "let square x = x * x\n\nlet cube x = x * x * x")
    task = {
        "id": "cube",
        "project": "calc",
        "instruction": "add cube",
        "location": {"path": "lib/calc.ml", "line": 6},
        "checks": {"typecheck": True, "tests": True},
        "gold_diff": gold,
    }
    (work / "tasks.jsonl").write_text(json.dumps(task) + "\n")
    with contextlib_quiet():
        assert cli.main(["dataset", "export", str(work / "tasks.jsonl"), "--out", str(work)]) == 0
    return [json.loads(line) for line in (work / "test.jsonl").read_text().splitlines()]


class contextlib_quiet:
    """stderr silenced (the export's summary)."""

    def __enter__(self) -> None:
        import sys

        self._err = sys.stderr
        sys.stderr = io.StringIO()

    def __exit__(self, *exc: object) -> None:
        import sys

        sys.stderr = self._err


def block(search: str, replace: str, path: str = "lib/calc.ml") -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def grading(runs: int, work: Path) -> dict[int, list[float]]:
    from ocaml_ai_ls.rewards import Grader

    (row,) = calc_rows(work)
    provenance = row["provenance"]
    completions: list[str] = []
    for k in range(8):
        completions.append(
            block("let square x = x * x", f"let square x = x * x\n\nlet f{k} x = x + {k}")
        )
        completions.append(block("let square x = x * x", f"let square x = x *. {k}."))
        completions.append(block("let double x = x * 2", f"let double x = x * 2 + {k + 1}"))
    out: dict[int, list[float]] = {1: [], 2: []}
    graders = {workers: Grader(workers=workers) for workers in (1, 2)}
    try:
        for grader in graders.values():
            grader.grade(completions[0], provenance)  # warm the shadows first
        for _ in range(runs):  # 1 and 2 workers in turn, so both see the same machine
            for workers, grader in graders.items():
                started = time.perf_counter()
                rewards = grader.grade_batch(completions, [provenance] * len(completions))
                out[workers].append(len(completions) / (time.perf_counter() - started))
                assert rewards == [1.0, 0.5, 0.75] * 8, rewards
    finally:
        for grader in graders.values():
            grader.close()
    return out


# -- 3. eval agreement ---------------------------------------------------------------


def eval_agreement(work: Path) -> dict[str, Any]:
    from ocaml_ai_ls.config import SettingsLayers
    from ocaml_ai_ls.dataset.episodes import Episode
    from ocaml_ai_ls.dataset.export import provenance
    from ocaml_ai_ls.eval.runner import EvalOptions, Runner, read_attempts, select_arms
    from ocaml_ai_ls.eval.tasks import load_tasks
    from ocaml_ai_ls.rewards import Grader
    from tests.test_eval_runner import ANSWERS, TaskModel

    tasks = load_tasks(TASKS)
    out = work / "eval"
    with TaskModel(ANSWERS) as model:
        settings, _ = SettingsLayers(file={"model": {"base_url": model.base_url}}).build()
        opts = EvalOptions(
            tasks=tasks,
            settings=settings,
            arms=select_arms(settings, None),
            samples=1,
            workers=2,
            out=out,
            record_answers=True,
        )
        asyncio.run(Runner(opts, progress=io.StringIO()).run())
    attempts = {a["task"]: a for a in read_attempts(out / "attempts.jsonl")}
    first: dict[str, str] = {}
    for line in (out / "answers.jsonl").read_text().splitlines():
        call = json.loads(line)
        if call["round"] == 0:
            first[call["task"]] = call["answers"][0]
    rows = {
        t.id: provenance(Episode(t, None, "test", {"source": "eval", "id": t.id}), [])
        for t in tasks
    }
    with Grader(workers=2) as grader:
        ids = sorted(first)
        rewards = dict(
            zip(
                ids,
                grader.grade_batch([first[i] for i in ids], [rows[i] for i in ids]),
                strict=True,
            )
        )
    agree = all((rewards[t] == 1.0) == bool(attempts[t]["passed_before_repair"]) for t in ids)
    return {
        "tasks": len(ids),
        "pass_rate": statistics.mean(bool(attempts[t]["passed"]) for t in ids),
        "pass_rate_before_repair": statistics.mean(
            bool(attempts[t]["passed_before_repair"]) for t in ids
        ),
        "mean_reward": statistics.mean(rewards.values()),
        "rewards": rewards,
        "statuses": {t: attempts[t]["status"] for t in ids},
        "agree": agree,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("all", "roundtrip", "grading", "eval"), default="all")
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument("--projects", default=",".join(PROJECTS))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocaml-ai-train-bench-") as tmp:
        work = Path(tmp)
        # the stores, shadows and metrics of this run stay in the temporary directory
        os.environ["XDG_DATA_HOME"] = str(work / "data")
        os.environ["XDG_CACHE_HOME"] = str(work / "cache")
        if args.part in ("all", "roundtrip"):
            print(f"round trip of exported episodes (newest {args.commits} commits each):")
            totals: Counter[str] = Counter()
            for project in args.projects.split(","):
                found = round_trip(project, args.commits, work / "rt")
                print(f"  {project}: {found['episodes']} episodes mined")
                for strategy in STRATEGIES:
                    s = found[strategy]
                    totals[f"{strategy} rows"] += s["rows"]
                    totals[f"{strategy} tried"] += s["tried"]
                    why = ", ".join(f"{n} {r}" for r, n in sorted(s["failed"].items())) or "-"
                    print(
                        f"    {strategy:<15} {s['rows']:3d}/{s['tried']:<3d} "
                        f"({s['s_per_row']:.2f} s per episode)  left out: {why}"
                    )
            for strategy in STRATEGIES:
                rows, tried = totals[f"{strategy} rows"], totals[f"{strategy} tried"]
                print(f"  all: {strategy:<15} {rows}/{tried} = {rows / max(1, tried):.1%}")
        if args.part in ("all", "grading"):
            rates = grading(args.runs, work / "grading")
            print("completions graded per second (24 per batch, warm local shadows, tests on):")
            for workers, values in rates.items():
                print(
                    f"  {workers} worker(s): median {statistics.median(values):.2f}/s "
                    f"(runs: {', '.join(f'{v:.2f}' for v in values)})"
                )
            ratio = statistics.median(rates[2]) / statistics.median(rates[1])
            print(f"  2 workers / 1: {ratio:.2f}x")
        if args.part in ("all", "eval"):
            found = eval_agreement(work)
            print(f"eval tasks ({found['tasks']}, scripted model, 1 sample):")
            print(
                f"  eval pass rate {found['pass_rate']:.2f} "
                f"(before repair {found['pass_rate_before_repair']:.2f}); "
                f"mean reward of the first answers {found['mean_reward']:.3f}"
            )
            for task, reward in found["rewards"].items():
                print(f"    {task:<14} reward {reward:.2f}  eval status {found['statuses'][task]}")
            print(f"  reward 1.0 exactly where eval passed before repair: {found['agree']}")


if __name__ == "__main__":
    main()
