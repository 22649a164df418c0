"""How long one request's context takes on a real library, with the index warm.

On `base` (about 87k lines; cloned from `../shared/corpora` into
`benchmarks/.cache/`) at its head: the index is built once, then the context
of many requests is sliced, each at the start of a different top-level item
of an `.ml` file (every k-th item of the project, so large and small files,
central and leaf modules all come up) with the subject of one of the
project's commits as the instruction. The file is open in the editor, as
it is when a user asks (its tree is kept by the server; `--closed` reads
it from disk instead, as `ocaml-ai-ls context` does). Printed: p50, p95 and
max over the requests (first time each), and again over the same requests a
second time.

    python -m benchmarks.context_speed [--project base] [--requests 100]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

from lsprotocol import types

from ocaml_ai_ls.context.index import WorkspaceIndex, settle
from ocaml_ai_ls.context.slicer import build_context, warm
from ocaml_ai_ls.documents import DocumentStore
from ocaml_ai_ls.positions import encode
from ocaml_ai_ls.uris import path_to_uri
from ocaml_ai_ls.workspace import Workspace

from .corpus import CACHE, cases, checkout, clone, git


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default="base")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--slowest", type=int, default=0, help="list the N slowest requests")
    parser.add_argument("--closed", action="store_true", help="files not open in an editor")
    parser.add_argument("--cold", action="store_true", help="no warm-up after indexing")
    args = parser.parse_args(argv)
    repo = clone(args.project)
    head = git(repo, "rev-parse", "HEAD").strip()
    root = checkout(repo, head, CACHE / "work" / f"{args.project}-speed")
    subjects = [c.subject for c in cases(args.project, 50, repo)]
    documents = DocumentStore()
    index = WorkspaceIndex(root, documents)
    started = time.perf_counter()
    index.scan()
    scan_ms = (time.perf_counter() - started) * 1000
    ws = Workspace(root, documents)
    started = time.perf_counter()
    if not args.cold:
        warm(index, ws)  # as the server does once a root is indexed
    settle()
    warm_ms = (time.perf_counter() - started) * 1000
    items = [
        (source.path, d.start_line)
        for source in sorted(index.files.values(), key=lambda s: s.rel)
        if source.path.suffix == ".ml" and source.summary is not None
        for d in source.summary.definitions
        if not d.scope
    ]
    step = max(1, len(items) // args.requests)
    chosen = items[::step][: args.requests]
    lines_total = sum(s.summary.line_count for s in index.files.values() if s.summary)
    print(
        f"{args.project} at {head[:10]}: {len(index.files)} files, {lines_total:,} lines; "
        f"index {scan_ms:,.0f} ms, then warmed {warm_ms:,.0f} ms; "
        f"{len(chosen)} requests (every {step}th of {len(items)} items)"
    )
    for round_ in ("first", "second"):
        times: list[float] = []
        slow: list[tuple[float, str]] = []
        for k, (path, line) in enumerate(chosen):
            if not args.closed and documents.get(path_to_uri(path)) is None:
                text = path.read_text(encoding="utf-8")
                documents.open(types.TextDocumentItem(path_to_uri(path), "ocaml", 1, text))
            current = ws.read(path)
            assert current is not None
            offset = len(encode("".join(current.text.splitlines(keepends=True)[:line])))
            instruction = subjects[k % len(subjects)]
            started = time.perf_counter()
            build_context(
                ws, current, current.text, (offset, offset), instruction=instruction, index=index
            )
            times.append((time.perf_counter() - started) * 1000)
            slow.append((times[-1], f"{index.rel(path)}:{line + 1}"))
        print(
            f"  slice, {round_} time: p50 {statistics.median(times):.1f} ms, "
            f"p95 {quantile(times, 0.95):.1f} ms, max {max(times):.1f} ms"
        )
        for ms, where in sorted(slow, reverse=True)[: args.slowest]:
            print(f"    {ms:8.1f} ms  {where}")


if __name__ == "__main__":
    main()
