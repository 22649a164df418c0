"""Throughput of the batch service: `ces serve` with 2 workers against 1, and a burst.

On the generated inventory project (`dune_fixture.py`), a real `ocaml-ai-ls ces
serve --port 0` process (shadows in a temporary XDG_CACHE_HOME) gets `--checks`
unified diffs (made with difflib) from `--concurrency` client threads: one-function
edits of a middle-layer module (random revisions), every `--error-every`th a type
error instead.
Per worker count it prints the warm-up time, the throughput (checks per second
of wall time), p50 and p95 latency of a request and the statuses (each checked
against the expected one), medians over `--runs`; then the throughput ratio.
Before the checks, 30 GET /health on one kept-alive connection: a reply written in
two parts meets Nagle's algorithm there (~40 ms each). Then, on the same service,
a burst: `--burst` (200) POST /check from `--clients`
(80) concurrent httpx async clients (one connection each), counted by answer:
200, 400, 503, and connections reset or refused.

`--code DIR` runs the service of another checkout (its `ocaml_ai_ls`, cwd set to
it), e.g. a worktree of main, to compare with the code before a change:

    python -m benchmarks.ces_throughput [--checks 50] [--concurrency 4] [--runs 3]
        [--modules 30] [--workers 2] [--tests] [--burst 200] [--clients 80] [--code DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from . import _lsp
from .dune_fixture import make_project, one_function_edit, source_counts, type_error_edit

TIMEOUT = 120.0


@dataclass(frozen=True)
class Job:
    diff: str
    expect: str


@dataclass
class Run:
    warm_s: float
    wall_s: float
    latencies_ms: list[float]
    statuses: Counter[str]
    wrong: int
    #: The burst's answers: "200", "400", "503", "reset" (connection errors).
    burst: Counter[str]
    burst_s: float
    #: Round trips of GET /health on one kept-alive connection (Nagle shows here).
    health_ms: list[float]

    @property
    def per_second(self) -> float:
        return len(self.latencies_ms) / self.wall_s


def unified(root: Path, rel: str, new: str) -> str:
    old = (root / rel).read_text("utf-8")
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"a/{rel}",
        tofile=f"b/{rel}",
    )
    return "".join(lines)


def jobs(root: Path, count: int, error_every: int) -> list[Job]:
    """Diffs as a model's candidates would come: mostly good, some type errors.

    Each takes a random revision `k`: its parity decides whether the module's
    line structure (and so its `.cmi`) changes from one check to the next in a
    shadow, so it must not follow the order in which the workers take requests
    (strictly alternating `k` would give each of 2 workers one parity, and dune's
    cutoff would flatter 2 workers).
    """
    rng = random.Random(0)
    out: list[Job] = []
    for i in range(count):
        k = rng.randrange(1_000_000)
        if error_every and i % error_every == error_every - 1:
            out.append(Job(unified(root, *type_error_edit(root, k)), "type_error"))
        else:
            out.append(Job(unified(root, *one_function_edit(root, k)), "ok"))
    return out


def start_service(
    root: Path, workers: int, cache: Path, code: Path | None = None
) -> tuple[subprocess.Popen[str], str]:
    """The service as a user starts it (from `code`'s checkout when given); returns once
    it prints its URL (warm)."""
    args = ["--root", str(root), "--workers", str(workers), "--port", "0"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocaml_ai_ls", "ces", "serve", *args, "--timeout", str(TIMEOUT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "XDG_CACHE_HOME": str(cache)},
        cwd=code,  # `python -m` imports the package of its working directory first
    )
    assert proc.stdout is not None
    out = proc.stdout
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(out.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=600)
    except queue.Empty:
        proc.kill()
        raise SystemExit("ces serve did not get warm in 10 minutes") from None
    if not line.startswith("ces: serving "):
        proc.kill()
        raise SystemExit(f"ces serve failed to start (exit {proc.wait()})")
    return proc, line.split()[-1]


def stop_service(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def burst(url: str, work: list[Job], requests: int, clients: int) -> Counter[str]:
    """`requests` POST /check from `clients` concurrent clients, one connection each;
    the answers by status code, connection errors as "reset"."""
    todo: asyncio.Queue[Job] = asyncio.Queue()
    for i in range(requests):
        todo.put_nowait(work[i % len(work)])
    answers: Counter[str] = Counter()

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT * 3) as c:
            while not todo.empty():
                job = todo.get_nowait()
                try:
                    r = await c.post("/check", json={"diff": job.diff})
                    answers[str(r.status_code)] += 1
                except httpx.TransportError:
                    answers["reset"] += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return answers


def one_run(
    root: Path,
    workers: int,
    work: list[Job],
    args: argparse.Namespace,
) -> Run:
    concurrency, tests = args.concurrency, args.tests
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        proc, url = start_service(root, workers, Path(cache), args.code)
        warm_s = time.perf_counter() - started
        local = threading.local()

        def send(job: Job) -> tuple[float, str, bool]:
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=url, timeout=TIMEOUT * 3)
            client: httpx.Client = local.client
            t0 = time.perf_counter()
            r = client.post("/check", json={"diff": job.diff, "tests": tests})
            ms = (time.perf_counter() - t0) * 1000
            status = r.json().get("status", f"http {r.status_code}")
            return ms, status, status != job.expect

        try:
            health_ms = []
            with httpx.Client(base_url=url, timeout=TIMEOUT) as c:
                c.get("/health")
                for _ in range(30):
                    t0 = time.perf_counter()
                    c.get("/health")
                    health_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as threads:
                results = list(threads.map(send, work))
            wall_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            answers = asyncio.run(burst(url, work, args.burst, args.clients))
            burst_s = time.perf_counter() - t0
        finally:
            stop_service(proc)
    return Run(
        warm_s,
        wall_s,
        [ms for ms, _, _ in results],
        Counter(status for _, status, _ in results),
        sum(wrong for _, _, wrong in results),
        answers,
        burst_s,
        health_ms,
    )


def report(workers: int, runs: list[Run], args: argparse.Namespace) -> float:
    """Print one worker count's figures; its median checks per second."""
    per_second = statistics.median(r.per_second for r in runs)
    latencies = [ms for r in runs for ms in r.latencies_ms]
    statuses: Counter[str] = sum((r.statuses for r in runs), Counter())
    wrong = sum(r.wrong for r in runs)
    warm = statistics.median(r.warm_s for r in runs)
    print(f"--workers {workers}: warm-up {warm:.1f} s (start to URL line, median)")
    print(f"  throughput {per_second:6.2f} checks/s (median of {len(runs)} runs)")
    print("  " + _lsp.row("latency per request", latencies))
    health = [ms for r in runs for ms in r.health_ms]
    print("  " + _lsp.row("GET /health, kept alive", health))
    counts = ", ".join(f"{s} {n}" for s, n in sorted(statuses.items()))
    print(f"  statuses: {counts}" + (f"   WARNING: {wrong} not as expected" if wrong else ""))
    for r in runs:
        kinds = ("200", "400", "503", "reset")
        others = sorted(set(r.burst) - set(kinds))
        shown = ", ".join(f"{k} {r.burst[k]}" for k in (*kinds, *others))
        print(f"  burst of {args.burst} from {args.clients} clients: {shown} ({r.burst_s:.1f} s)")
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=50, help="requests per run")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modules", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2, help="compared with 1")
    parser.add_argument("--error-every", type=int, default=5, help="every Nth is a type error")
    parser.add_argument("--tests", action="store_true", help="also run dune test per check")
    parser.add_argument("--burst", type=int, default=200, help="requests of the burst")
    parser.add_argument("--clients", type=int, default=80, help="concurrent clients of the burst")
    parser.add_argument(
        "--code", type=Path, help="the checkout whose ocaml_ai_ls serves (default: this one)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_project(Path(tmp) / "inventory", args.modules)
        modules, lines = source_counts(root)
        work = jobs(root, args.checks, args.error_every)
        print(
            f"project: {modules} modules, {lines} lines; {args.checks} diffs per run from "
            f"{args.concurrency} client threads, tests {'on' if args.tests else 'off'}; "
            f"{os.cpu_count()} CPUs; code: {args.code or 'this checkout'}"
        )
        rates: dict[int, float] = {}
        for workers in (args.workers, 1):
            runs = [one_run(root, workers, work, args) for _ in range(args.runs)]
            rates[workers] = report(workers, runs, args)
        print(f"throughput ratio {args.workers} workers / 1: {rates[args.workers] / rates[1]:.2f}")


if __name__ == "__main__":
    main()
