"""Snapshot speed: what recording a ~100,000-line workspace costs, in time and bytes.

On the workspace `scaled_workspace.py` generates, with the store in a temporary
directory and no type-check (the store alone):

- the first snapshot (every file new);
- a snapshot when nothing changed: the recorder's stamp (what it pays every
  interval), and collecting the files plus `take` (which then stores nothing);
- a snapshot when one file changed a little: time and store growth;
- a simulated 8-hour day, one change per minute (480 snapshots, each a small
  edit of one random file): time per snapshot p50/p95/max (git's automatic
  packing included), store size at the end (loose objects take a disk block
  each until packed) and after `snapshot gc` packs it, per snapshot;
- with `--check`, on the generated dune project of `dune_fixture.py` (the scaled
  workspace does not compile: its renaming breaks keywords): snapshots including
  their type-check, the first (a cold shadow build), then one-file changes in the
  warm shadow (the last a type error).

    python -m benchmarks.snapshot_speed [--lines 100000] [--runs 20] [--day 480]
                                        [--check] [--modules 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import tempfile
import time
from pathlib import Path

from ocaml_ai_ls.config import SnapshotSettings
from ocaml_ai_ls.snapshots.recorder import Recorder, source_stamp
from ocaml_ai_ls.snapshots.store import GREEN, BuildState, SnapshotStore, source_files

from ._lsp import row
from .dune_fixture import make_project, one_function_edit, source_counts, type_error_edit
from .scaled_workspace import generate


def disk_bytes(path: Path) -> int:
    """What a directory takes on disk (blocks, as `du`)."""
    total = 0
    for dirpath, _dirs, names in os.walk(path):
        for name in names:
            total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def kib(n: float) -> str:
    return f"{n / 1024:9.1f} KiB"


def small_edit(root: Path, rng: random.Random, files: list[str], n: int) -> str:
    """Change one random `.ml` file a little (a number in it, else a new line)."""
    rel = rng.choice(files)
    path = root / rel
    text = path.read_text("utf-8")
    numbers = list(re.finditer(r"\b\d+\b", text))
    if numbers:
        m = rng.choice(numbers)
        text = text[: m.start()] + str(int(m.group()) + 1) + text[m.end() :]
    else:
        text += f"let _edit_{n} = {n}\n"
    path.write_text(text, "utf-8")
    return rel


def take(root: Path, store: SnapshotStore) -> tuple[float, bool]:
    """Collect the files and take a snapshot (a green state, no check): ms, stored."""
    start = time.perf_counter()
    snap = store.take(source_files(root), BuildState(GREEN))
    return (time.perf_counter() - start) * 1000, snap is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--day", type=int, default=480, help="snapshots in the simulated day")
    parser.add_argument("--check", action="store_true", help="also snapshots with their check")
    parser.add_argument("--modules", type=int, default=30, help="of the project checked")
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        lines = generate(root, args.lines)
        store = SnapshotStore(root, Path(tmp) / "data")
        files = source_files(root)
        mls = sorted(rel for rel in files if rel.endswith(".ml"))
        size = sum(map(len, files.values()))
        print(f"workspace: {len(files)} source files, {lines} lines, {size / 1e6:.1f} MB")

        ms, _ = take(root, store)
        first = store.size()
        print(f"first snapshot              {ms:9.1f} ms   store {kib(first)}")

        stamps = []
        for _ in range(args.runs):
            start = time.perf_counter()
            source_stamp(root, {})
            stamps.append((time.perf_counter() - start) * 1000)
        print(row("nothing changed: stamp only", stamps))
        same = [take(root, store)[0] for _ in range(args.runs)]
        assert store.size() == first
        print(row("nothing changed: collect + take", same) + "   growth 0 B")

        one, growth = [], []
        for n in range(args.runs):
            small_edit(root, rng, mls, n)
            before = store.size()
            ms, stored = take(root, store)
            assert stored
            one.append(ms)
            growth.append(store.size() - before)
        print(
            row("one file changed: collect + take", one)
            + f"   growth {kib(sum(growth) / len(growth))} per snapshot (loose objects)"
        )

        day_store = SnapshotStore(root, Path(tmp) / "day")
        take(root, day_store)
        packed_first = day_store.gc(max_age_days=1e6, max_megabytes=1e6).bytes_after
        start_size = day_store.size()
        times = []
        for n in range(args.day):
            small_edit(root, rng, mls, 1000 + n)
            ms, stored = take(root, day_store)
            assert stored
            times.append(ms)
        end_size, end_disk = day_store.size(), disk_bytes(day_store.path)
        print(
            row(f"a day: {args.day} snapshots, collect + take", times)
            + f"   max {max(times):.0f} ms"
        )
        print(
            f"  store after the day       {kib(end_size)} objects, {kib(end_disk)} on disk; "
            f"growth {kib((end_size - start_size) / args.day)} per snapshot "
            f"(the first, packed: {kib(packed_first)})"
        )
        gc_start = time.perf_counter()
        report = day_store.gc(max_age_days=1e6, max_megabytes=1e6)
        gc_ms = (time.perf_counter() - gc_start) * 1000
        print(
            f"  after gc (packed)         {kib(report.bytes_after)} objects, "
            f"{kib(disk_bytes(day_store.path))} on disk; "
            f"{kib((report.bytes_after - packed_first) / args.day)} per snapshot after the first; "
            f"gc {gc_ms:.0f} ms"
        )
        assert report.kept == args.day + 1

        if args.check:
            asyncio.run(with_check(Path(tmp), args.modules))


async def with_check(tmp: Path, modules: int) -> None:
    """Snapshots with their type-check, on the generated dune project that builds green
    (`dune_fixture.py`; the scaled workspace does not compile): the first (a cold
    shadow build), then one-function edits and a type error, in the warm shadow."""
    root = make_project(tmp / "inventory", modules)
    count, lines = source_counts(root)
    recorder = Recorder(root, SnapshotSettings(), data_dir=tmp / "checked", cache=tmp / "cache")
    try:
        start = time.perf_counter()
        snap = await recorder.take()
        cold = time.perf_counter() - start
        state = snap.state.status if snap else "?"
        print(f"with the type-check, on a {count}-module dune project ({lines} lines):")
        print(f"  first snapshot (cold shadow build) {cold:8.2f} s    {state}")
        warm, statuses = [], []
        for k in range(5):
            rel, text = (type_error_edit if k == 4 else one_function_edit)(root, k)
            (root / rel).write_text(text, "utf-8")
            start = time.perf_counter()
            snap = await recorder.take()
            warm.append((time.perf_counter() - start) * 1000)
            statuses.append(snap.state.status if snap else "?")
        print(row("  one file changed, warm check", warm) + f"   {', '.join(statuses)}")
    finally:
        recorder.close()


if __name__ == "__main__":
    main()
