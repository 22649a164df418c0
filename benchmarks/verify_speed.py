"""Verification speed: a cold dune build against warm shadow checks of a small edit.

On the generated inventory project (`dune_fixture.py`: a library of `--modules`
modules in layers, a second library, an executable and three tests):

- cold `dune build @check` from an empty `_build` (median, min, max of `--runs`);
- the time to warm one shadow from nothing (sync + first `dune build @check`),
  and a pool of 2 as the server warms it at startup (the second shadow starts
  from a copy of the first's `_build`);
- warm `Shadow.check` of a one-function edit of a middle-layer module
  (`--runs` x 3 checks, a different text each time), p50 and p95 and the ratio
  warm p50 / cold p50; also with the edit keeping its line structure from one
  check to the next (the module's `.cmi` then stays the same and dune cuts the
  rebuild of its dependents off), and of a middle-layer module with an `.mli`;
- a type-error edit (p50), and the edit with `tests=True` (check + `dune test`):
  the first such check (it builds the native code of everything) and then p50.

Every status is checked against the expected one (`ok`, `type_error`): a
warning says when a measure timed a build that went wrong. Shadows live in the
temporary directory, never in the user's cache.

    python -m benchmarks.verify_speed [--runs 5] [--modules 30]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ocaml_ai_ls.verify.pool import ShadowPool
from ocaml_ai_ls.verify.result import OK, TYPE_ERROR, Verification
from ocaml_ai_ls.verify.shadow import Shadow, run_dune, shadow_dir

from . import _lsp
from .dune_fixture import (
    edit_target,
    make_project,
    one_function_edit,
    source_counts,
    type_error_edit,
)

TIMEOUT = 60.0
#: Issue #4: a warm check of a one-function edit against a cold build.
TARGET_RATIO = 0.1
TARGET_WARM_MS = 1500.0

Edit = Callable[[Path, int], tuple[str, str]]


def mli_edit(root: Path, k: int) -> tuple[str, str]:
    """The one-function edit of a module with an `.mli` (its dependents never rebuild)."""
    return one_function_edit(root, k, interface=True)


def warn(message: str) -> None:
    print(f"  WARNING: {message}")


def cold_builds(root: Path, runs: int) -> list[float]:
    """Milliseconds of `dune build @check` from an empty `_build`."""
    times: list[float] = []
    for _ in range(runs):
        shutil.rmtree(root / "_build", ignore_errors=True)
        run = run_dune(["build", "@check"], root, 600)
        if run.code != 0:
            warn(f"cold build exited with {run.code}: {run.output[-500:]}")
        times.append(run.ms)
    shutil.rmtree(root / "_build", ignore_errors=True)
    return times


def warm_up(root: Path, path: Path) -> float:
    """Milliseconds to make a warm shadow at `path` from nothing."""
    start = time.perf_counter()
    shadow = Shadow(root, path)
    shadow.sync()
    run = shadow.build(600)
    ms = (time.perf_counter() - start) * 1000
    if run.code != 0:
        warn(f"warming {path.name} exited with {run.code}: {run.output[-500:]}")
    return ms


def pool_warm_up(root: Path, cache: Path, size: int) -> float:
    """Milliseconds to warm a new pool (the second shadow starts from the first's `_build`)."""
    pool = ShadowPool(root, size, cache=cache)
    start = time.perf_counter()
    runs = asyncio.run(pool.warm(600, lambda done, total: None))
    ms = (time.perf_counter() - start) * 1000
    pool.close()
    if len(runs) != size or any(run.code != 0 for run in runs):
        warn(f"warming a pool of {size}: {[run.code for run in runs]}")
    return ms


def checks(
    shadow: Shadow, edit: Edit, ks: list[int], expect: str, tests: bool = False
) -> tuple[list[float], list[float]]:
    """Wall milliseconds of `shadow.check` per edit `k`, and dune's share (its stages)."""
    wall: list[float] = []
    dune: list[float] = []
    for k in ks:
        rel, text = edit(shadow.root, k)
        start = time.perf_counter()
        result = shadow.check({rel: text}, TIMEOUT, tests)
        wall.append((time.perf_counter() - start) * 1000)
        dune.append(sum(s.ms for s in result.stages))
        expect_status(result, expect, f"{edit.__name__}(k={k}, tests={tests})")
    return wall, dune


def expect_status(result: Verification, expect: str, what: str) -> None:
    if result.status != expect:
        first = result.errors[0] if result.errors else None
        warn(
            f"{what} came back {result.status!r}, not {expect!r}: this figure timed a "
            f"wrong build; first error: {first}"
        )
    elif expect == TYPE_ERROR and not result.errors:
        warn(f"{what}: a type error without a located error")


def verdict(met: bool) -> str:
    return "target met" if met else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--modules", type=int, default=30)
    args = parser.parse_args()
    n = args.runs * 3
    with tempfile.TemporaryDirectory() as tmp:
        root = make_project(Path(tmp) / "inventory", args.modules)
        cache = Path(tmp) / "shadows"
        modules, lines = source_counts(root)
        print(
            f"project: {modules} library modules, {lines} lines of OCaml; "
            f"edits of `score` in {edit_target(root)}"
        )

        cold = cold_builds(root, args.runs)
        cold_p50 = statistics.median(cold)
        print(
            f"{'cold dune build @check (empty _build)':<44} p50 {cold_p50:8.2f} ms   "
            f"min {min(cold):8.2f} ms   max {max(cold):8.2f} ms   (n={len(cold)})"
        )

        fresh = [warm_up(root, cache / f"fresh-{i}") for i in range(args.runs)]
        print(_lsp.row("warm one shadow from nothing (sync+build)", fresh))
        pools = [pool_warm_up(root, cache / f"pool-{i}", 2) for i in range(args.runs)]
        print(_lsp.row("warm a pool of 2 shadows from nothing", pools) + "   (server start)")

        shadow = Shadow(root, shadow_dir(root, 0, cache))
        shadow.sync()
        run = shadow.build(600)
        if run.code != 0:
            warn(f"the shadow does not build: {run.output[-500:]}")

        warm, dune = checks(shadow, one_function_edit, list(range(n)), OK)
        warm_p50 = _lsp.percentile(warm, 0.5)
        ratio = warm_p50 / cold_p50
        print(_lsp.row("warm check, one-function edit", warm))
        print(_lsp.row("  of which dune (check stage)", dune))
        print(
            f"  warm p50 / cold p50 = {ratio:.3f}   (target <= {TARGET_RATIO}: "
            f"{verdict(ratio <= TARGET_RATIO)}); warm p50 < {TARGET_WARM_MS / 1000:.1f} s: "
            f"{verdict(warm_p50 < TARGET_WARM_MS)}"
        )
        same, _ = checks(shadow, one_function_edit, list(range(0, 2 * n, 2)), OK)
        print(_lsp.row("  same lines as the previous candidate", same) + "   (.cmi unchanged)")
        checks(shadow, mli_edit, [n], OK)  # the previous candidate's module rebuilds here
        with_mli, _ = checks(shadow, mli_edit, list(range(n)), OK)
        print(_lsp.row(f"  of {edit_target(root, True)} (has an .mli)", with_mli))

        errors, _ = checks(shadow, type_error_edit, list(range(n)), TYPE_ERROR)
        print(_lsp.row("warm check, type-error edit", errors))

        first_test, _ = checks(shadow, one_function_edit, [n], OK, tests=True)
        print(f"{'first check + dune test (native build)':<44} {first_test[0]:12.2f} ms")
        tested, _ = checks(shadow, one_function_edit, list(range(n)), OK, tests=True)
        print(_lsp.row("warm check + dune test, one-function edit", tested))


if __name__ == "__main__":
    main()
