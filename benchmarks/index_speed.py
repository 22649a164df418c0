"""Cold workspace indexing against the raw tree-sitter parse of the same files.

On a real OCaml library (default: `base`, cloned from `../shared/corpora/base.bundle`
into `benchmarks/.cache/` and checked out at its head):

- raw read + parse: every `.ml`/`.mli` the index would read, read from disk and
  parsed with tree-sitter-ocaml (the grammar of its kind), nothing else: the floor;
- cold index: `WorkspaceIndex(root, DocumentStore()).scan()` with a new chunk
  cache, which walks the root, reads, parses and summarises every file and
  builds the name tables;
- their ratio;
- a full `gc.collect()` right after the cold index (not counted in it): work the
  cycle collector does over the new index's objects sooner or later;
- warm re-index: a new `WorkspaceIndex` over the same (filled) chunk cache,
  what a second scan of unchanged files pays.

Each run is a fresh Python process (imports done, then timed; query compilation
and grammar loading fall inside the timed part, as they do in a new server),
files in the OS page cache (a read pass first). Runs of each kind alternate, and
the figures are medians.

    python -m benchmarks.index_speed [--root DIR] [--runs 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ocaml_ai_ls.context.index import WorkspaceIndex
from ocaml_ai_ls.context.parsing import SourceKind, parse
from ocaml_ai_ls.context.summary import ChunkCache
from ocaml_ai_ls.documents import DocumentStore

from .corpus import CACHE, checkout, clone, git


def base_tree() -> Path:
    """`base` at its bundle's head, in a work tree under `benchmarks/.cache/`."""
    repo = clone("base")
    head = git(repo, "rev-parse", "HEAD").strip()
    return checkout(repo, head, CACHE / "index_speed" / "base")


def sources(root: Path) -> list[tuple[Path, SourceKind]]:
    """The `.ml`/`.mli` files the index reads (its own walk: ignores honoured)."""
    out: list[tuple[Path, SourceKind]] = []
    for path in WorkspaceIndex(root).walk():
        kind = SourceKind.of(path)
        if kind is not None:
            out.append((path, kind))
    return out


def time_parse(root: Path) -> dict[str, float]:
    """Seconds to read and parse every source file, and the files' count and lines."""
    files = sources(root)
    start, cpu = time.perf_counter(), time.process_time()
    lines = 0
    for path, kind in files:
        data = path.read_bytes()
        parse(data, kind)
        lines += data.count(b"\n")
    return {
        "parse": time.perf_counter() - start,
        "parse_cpu": time.process_time() - cpu,
        "files": len(files),
        "lines": lines,
    }


def time_index(root: Path) -> dict[str, float]:
    """Seconds for a cold scan (new cache), then a warm one (same cache, new index)."""
    cache = ChunkCache(maxsize=1 << 20)  # bounded, but larger than the workspace
    start, cpu = time.perf_counter(), time.process_time()
    index = WorkspaceIndex(root, DocumentStore(), cache)
    index.scan()
    index.definers("")  # the name tables, in case scan leaves them for the first request
    cold, cold_cpu = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    gc.collect()  # what the collector does over the new index sooner or later
    collect = time.perf_counter() - start
    files = len(index.files)
    start = time.perf_counter()
    warm_index = WorkspaceIndex(root, DocumentStore(), cache)
    warm_index.scan()
    warm_index.definers("")
    warm = time.perf_counter() - start
    return {"cold": cold, "cold_cpu": cold_cpu, "collect": collect, "warm": warm, "indexed": files}


def child(what: str, root: Path) -> dict[str, float]:
    """One measurement in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.index_speed", "--child", what, "--root", str(root)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="workspace to index (default: base's head)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", choices=("parse", "index"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = (args.root or base_tree()).resolve()
    if args.child == "parse":
        print(json.dumps(time_parse(root)))
        return
    if args.child == "index":
        print(json.dumps(time_index(root)))
        return
    for path, _ in sources(root):  # into the page cache
        path.read_bytes()
    parses: list[dict[str, float]] = []
    indexes: list[dict[str, float]] = []
    for _ in range(args.runs):
        parses.append(child("parse", root))
        indexes.append(child("index", root))
    parse_s = statistics.median(p["parse"] for p in parses)
    cold_s = statistics.median(i["cold"] for i in indexes)
    warm_s = statistics.median(i["warm"] for i in indexes)
    parse_cpu = statistics.median(p["parse_cpu"] for p in parses)
    cold_cpu = statistics.median(i["cold_cpu"] for i in indexes)
    first = parses[0]
    print(f"workspace: {root}")
    indexed = indexes[0]["indexed"]
    print(f"{first['files']:.0f} files ({indexed:.0f} indexed), {first['lines']:.0f} lines")
    print(f"median of {args.runs} runs, each in a fresh process:")
    print("                              wall ms   CPU ms")
    print(f"raw read + tree-sitter parse {parse_s * 1000:8.0f} {parse_cpu * 1000:8.0f}")
    print(f"cold index (scan + names)    {cold_s * 1000:8.0f} {cold_cpu * 1000:8.0f}")
    print(
        f"index / parse                {cold_s / parse_s:8.2f} {cold_cpu / parse_cpu:8.2f}"
        "   (target <= 4)"
    )
    collect_s = statistics.median(i["collect"] for i in indexes)
    print(
        f"a full gc.collect() after it {collect_s * 1000:8.0f}            (not in the cold index)"
    )
    print(f"warm re-index (same cache)   {warm_s * 1000:8.0f}")
    pairs = zip(parses, indexes, strict=True)
    print("wall ratio per run:", ", ".join(f"{i['cold'] / p['parse']:.2f}" for p, i in pairs))


if __name__ == "__main__":
    main()
