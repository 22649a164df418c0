"""What checking on Ray costs against the local path (`ces check --ray` / `eval --ray`).

On the generated inventory project (`dune_fixture.py`), per run:

- start-up: `ray.init` of a local Ray (no dashboard), the actors created, the project
  sent and warmed on each (what `--ray auto` pays before its first check), beside
  the local path's warm-up of as many shadows (`CheckEngine.warm`);
- per check, one at a time: `CheckEngine.check` locally against the same call on a
  Ray actor (`RayWorkers.check`), over the same one-function edits; and Ray's
  overhead alone: the round trip of a candidate that stops at the parse check
  (no dune), locally and on an actor, the difference of their medians;
- a batch of `--checks` with `--workers` workers both ways (`check_all` on Ray);
- memory: RSS of this driver, of each actor, and of Ray's own processes (GCS,
  raylet, ...: every other descendant of this process), after the checks.

It ends with the workload from which Ray would pay with a second machine of the
same size: the number of checks N where `S + N (t + o) / (2w) < N t / w` (S the
start-up, t a warm check, o the overhead, w workers per machine). On one machine
it never pays: the actors share the local CPUs.

    python -m benchmarks.ces_ray [--runs 3] [--checks 40] [--modules 30] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocaml_ai_ls.verify.engine import CheckEngine
from ocaml_ai_ls.verify.ray_workers import RayWorkers

from . import _lsp
from .dune_fixture import make_project, one_function_edit, source_counts

TIMEOUT = 120.0


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (from /proc's parent links)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


@dataclass
class Run:
    ray_init_s: float
    ray_ready_s: float
    local_warm_s: float
    local_ms: list[float]
    ray_ms: list[float]
    local_parse_ms: list[float]
    ray_parse_ms: list[float]
    local_batch_s: float
    ray_batch_s: float
    driver_mb: float
    actors_mb: float
    ray_own_mb: float
    same: bool


def edits(root: Path, count: int, seed: int) -> list[dict[str, str | None]]:
    out: list[dict[str, str | None]] = []
    for k in range(seed, seed + count):
        rel, text = one_function_edit(root, k)
        out.append({rel: text})
    return out


def strip(answer: dict[str, Any]) -> Any:
    v = answer.get("verification", {})
    return (v.get("status"), v.get("errors"), answer.get("error"))


#: A candidate the parse check refuses: its round trip is the path's cost alone.
PARSE_ERROR = {"lib/broken.ml": "let x = (\n"}


def timed(call: Any, count: int) -> list[float]:
    times = []
    for _ in range(count):
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1000)
    return times


def one_run(root: Path, checks: int, workers: int, seed: int) -> Run:
    import ray

    singles = edits(root, 10, seed)
    batch = edits(root, checks, seed + 1000)
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        local = CheckEngine(root, workers, TIMEOUT, cache=Path(cache))
        local.warm(lambda done, total: None)
        local_warm_s = time.perf_counter() - t0
        try:
            local_ms = []
            for files in singles:
                t0 = time.perf_counter()
                local.check(files, False, syntax=False)
                local_ms.append((time.perf_counter() - t0) * 1000)
            local_parse_ms = timed(lambda: local.check(PARSE_ERROR, False), 50)
            t0 = time.perf_counter()
            local_answers = _local_batch(local, batch)
            local_batch_s = time.perf_counter() - t0
        finally:
            local.close()

    t0 = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    ray_init_s = time.perf_counter() - t0
    try:
        pool = RayWorkers("auto", workers)
        key = pool.add_project(root, TIMEOUT, "dev")
        asyncio.run(pool.warm(key, workers))
        ray_ready_s = time.perf_counter() - t0

        async def one_at_a_time() -> list[float]:
            times = []
            for files in singles:
                t = time.perf_counter()
                await pool.check(key, files, False)
                times.append((time.perf_counter() - t) * 1000)
            return times

        ray_ms = asyncio.run(one_at_a_time())

        async def parse_errors() -> list[float]:
            times = []
            for _ in range(50):
                t = time.perf_counter()
                await pool.check(key, PARSE_ERROR, False, syntax=True)
                times.append((time.perf_counter() - t) * 1000)
            return times

        ray_parse_ms = asyncio.run(parse_errors())
        t0 = time.perf_counter()
        ray_answers = list(pool.check_all(key, [(files, False) for files in batch]))
        ray_batch_s = time.perf_counter() - t0
        me = os.getpid()
        actor_pids = {ray.get(a.__ray_call__.remote(lambda self: os.getpid())) for a in pool.actors}
        others = descendants(me) - actor_pids
        driver_mb = rss_mb(me)
        actors_mb = sum(rss_mb(p) for p in actor_pids)
        ray_own_mb = sum(rss_mb(p) for p in others)
        pool.close()
    finally:
        ray.shutdown()
    same = [strip(a) for a in local_answers] == [strip(a) for a in ray_answers]
    return Run(
        ray_init_s,
        ray_ready_s,
        local_warm_s,
        local_ms,
        ray_ms,
        local_parse_ms,
        ray_parse_ms,
        local_batch_s,
        ray_batch_s,
        driver_mb,
        actors_mb,
        ray_own_mb,
        same,
    )


def _local_batch(engine: CheckEngine, batch: list[dict[str, str | None]]) -> list[dict[str, Any]]:
    from concurrent.futures import ThreadPoolExecutor

    def one(files: dict[str, str | None]) -> dict[str, Any]:
        return {"verification": engine.check(files, False).to_json()}

    with ThreadPoolExecutor(engine.workers) as threads:
        return list(threads.map(one, batch))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--checks", type=int, default=40, help="checks of the batch")
    parser.add_argument("--modules", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_project(Path(tmp) / "inventory", args.modules)
        modules, lines = source_counts(root)
        print(
            f"project: {modules} modules, {lines} lines; {args.workers} workers; "
            f"batch of {args.checks}; {os.cpu_count()} CPUs; {args.runs} runs"
        )
        runs = [one_run(root, args.checks, args.workers, 97 * i) for i in range(args.runs)]

    def med(values: list[float]) -> float:
        return statistics.median(values)

    init = med([r.ray_init_s for r in runs])
    ready = med([r.ray_ready_s for r in runs])
    warm = med([r.local_warm_s for r in runs])
    print(f"start-up: ray.init {init:.2f} s; ray.init + actors + project sent and warm ", end="")
    print(f"{ready:.2f} s; local warm-up of {args.workers} shadows {warm:.2f} s (medians)")
    local_ms = [ms for r in runs for ms in r.local_ms]
    ray_ms = [ms for r in runs for ms in r.ray_ms]
    print("  " + _lsp.row("check, local", local_ms))
    print("  " + _lsp.row("check, on a Ray actor", ray_ms))
    local_parse = [ms for r in runs for ms in r.local_parse_ms]
    ray_parse = [ms for r in runs for ms in r.ray_parse_ms]
    print("  " + _lsp.row("no dune (parse error), local", local_parse))
    print("  " + _lsp.row("no dune (parse error), on Ray", ray_parse))
    overhead = statistics.median(ray_parse) - statistics.median(local_parse)
    print(f"  Ray's overhead per check (p50 difference without dune): {overhead:.2f} ms")
    lb = med([r.local_batch_s for r in runs])
    rb = med([r.ray_batch_s for r in runs])
    print(
        f"batch of {args.checks} with {args.workers} workers: local {lb:.2f} s "
        f"({args.checks / lb:.2f} checks/s), Ray {rb:.2f} s ({args.checks / rb:.2f} checks/s)"
    )
    print(
        f"memory (RSS, medians): driver {med([r.driver_mb for r in runs]):.0f} MB, "
        f"{args.workers} actors {med([r.actors_mb for r in runs]):.0f} MB, "
        f"Ray's own processes {med([r.ray_own_mb for r in runs]):.0f} MB"
    )
    print(f"answers identical to the local path: {all(r.same for r in runs)}")
    t = statistics.median(local_ms) / 1000
    o = max(overhead, 0.0) / 1000
    w = args.workers
    if t > 2 * o:
        n = ready * 2 * w / (t - 2 * o)
        print(
            f"pays with a second machine of {w} workers from about {n:.0f} checks "
            f"(S={ready:.1f} s, t={t * 1000:.0f} ms, o={o * 1000:.1f} ms); never on one machine"
        )


if __name__ == "__main__":
    main()
