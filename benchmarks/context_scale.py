"""The context engine at scale: indexing, slicing, re-indexing an edit, memory.

On a ~100,000-line workspace generated from the fixture projects
(`scaled_workspace.py`):

- cold index (a new index and chunk cache; files in the OS cache), beside the
  raw tree-sitter parse time of the same files, so the ratio to the parsing
  floor shows;
- warm slice latency (`build_context`) at top-level items across the workspace;
- a one-character edit in a 5,000-line open file: incremental re-parse plus
  index update (`Document.apply` + `WorkspaceIndex.update_document`);
- the real server's resident memory after indexing the workspace (over LSP
  on stdio), and after 10,000 one-character `didChange` edits.

    python -m benchmarks.context_scale [--lines 100000] [--runs 3] [--edits 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from lsprotocol import types

from ocaml_ai_ls.context.index import WorkspaceIndex, read_source
from ocaml_ai_ls.context.parsing import SourceKind, parse
from ocaml_ai_ls.context.slicer import build_context
from ocaml_ai_ls.documents import DocumentStore
from ocaml_ai_ls.positions import encode
from ocaml_ai_ls.uris import path_to_uri
from ocaml_ai_ls.workspace import Workspace

from . import _lsp
from .scaled_workspace import big_file, generate


def cold_index(root: Path, runs: int) -> tuple[list[float], list[float], int, int]:
    """Seconds to index cold, and to only read and parse the same files."""
    index_times: list[float] = []
    parse_times: list[float] = []
    files = lines = 0
    for _ in range(runs):
        index = WorkspaceIndex(root, DocumentStore())
        start = time.perf_counter()
        index.scan()
        index_times.append(time.perf_counter() - start)
        files = len(index.files)
        start = time.perf_counter()
        lines = 0
        for path in index.walk():
            kind = SourceKind.of(path)
            data = read_source(path)
            if kind is None or data is None:
                continue
            parse(data, kind)
            lines += data.count(b"\n")
        parse_times.append(time.perf_counter() - start)
    return index_times, parse_times, files, lines


def slice_latency(root: Path, samples: int) -> list[float]:
    """Milliseconds per `build_context` at random top-level items, after a warm-up pass."""
    documents = DocumentStore()
    index = WorkspaceIndex(root, documents)
    index.scan()
    ws = Workspace(root, documents)
    rng = random.Random(7)
    paths = sorted(p for p in index.files if p.suffix == ".ml")
    targets: list[tuple[Path, int]] = []
    while len(targets) < samples:
        path = rng.choice(paths)
        summary = index.summary(path)
        if summary is None or not summary.chunks:
            continue
        targets.append((path, rng.choice(summary.chunks).start_line))

    def one(path: Path, line: int) -> float:
        current = ws.read(path)
        assert current is not None
        lines = current.text.splitlines(keepends=True)
        offset = len(encode("".join(lines[:line])))
        start = time.perf_counter()
        build_context(ws, current, current.text, (offset, offset), instruction="", index=index)
        return (time.perf_counter() - start) * 1000

    for path, line in targets:  # warm: the first slice of a file reads it
        one(path, line)
    return [one(path, line) for path, line in targets]


def edit_latency(root: Path, rounds: int) -> tuple[list[float], int]:
    """Milliseconds for a one-character edit + incremental re-parse + index update."""
    text = big_file(5_000)
    path = root / "big" / "big.ml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    documents = DocumentStore()
    documents.encoding = documents.encoding.UTF8
    index = WorkspaceIndex(root, documents)
    index.scan()
    uri = path_to_uri(path)
    doc = documents.open(types.TextDocumentItem(uri, "ocaml", 1, text))
    index.update_document(doc)
    rng = random.Random(3)
    line_count = text.count("\n")
    times: list[float] = []
    for version in range(2, rounds + 2):
        line = rng.randrange(line_count)
        at = types.Position(line=line, character=0)
        change = types.TextDocumentContentChangePartial(range=types.Range(at, at), text=" ")
        start = time.perf_counter()
        doc.apply([change], version)
        index.update_document(doc)
        times.append((time.perf_counter() - start) * 1000)
    return times, line_count


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def server_memory(root: Path, edits: int) -> tuple[int, int, int, float]:
    """The server's RSS (KiB) after indexing, once a 5,000-line buffer is open and
    sliced, after `edits` one-character edits to it; and the indexing time."""
    caps = _lsp.CAPABILITIES
    caps = types.ClientCapabilities(
        workspace=caps.workspace,
        text_document=caps.text_document,
        window=types.WindowClientCapabilities(work_done_progress=True),
    )
    client = await _lsp.start(root, capabilities=caps, settings=_lsp.NO_SHADOWS)
    done = asyncio.Event()
    titles: dict[object, str] = {}

    @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def create(params: types.WorkDoneProgressCreateParams) -> None:
        return None

    @client.feature(types.PROGRESS)
    def progress(params: types.ProgressParams) -> None:
        value = params.value
        if not isinstance(value, dict):
            value = client.protocol._converter.unstructure(value)
        if value.get("kind") == "begin":
            titles[params.token] = value.get("title", "")
        if value.get("kind") == "end" and titles.get(params.token, "").endswith("indexing"):
            done.set()

    start = time.perf_counter()
    # the server starts indexing at `initialized`; progress tells when it ends
    await asyncio.wait_for(done.wait(), 300)
    indexed = time.perf_counter() - start
    server = client._server
    assert server is not None
    pid = server.pid
    await asyncio.sleep(0.5)
    after_index = rss_kib(pid)
    path = root / "big" / "big.ml"
    text = path.read_text("utf-8")
    uri = _lsp.open_doc(client, path, text)

    async def slice_at(at: types.Position) -> None:
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="ocaml-ai.context",
                arguments=[{"uri": uri, "range": {"start": at, "end": at}}],
            )
        )

    await slice_at(types.Position(line=0, character=0))  # the session has begun
    opened = rss_kib(pid)
    rng = random.Random(5)
    line_count = text.count("\n")
    curve: list[int] = []
    for version in range(2, edits + 2):
        at = types.Position(line=rng.randrange(line_count), character=0)
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[
                    types.TextDocumentContentChangePartial(range=types.Range(at, at), text=" ")
                ],
            )
        )
        if version % 2000 == 0:
            curve.append(rss_kib(pid))
        if version % 500 == 0:  # a slice now and then, as a user's requests would
            await slice_at(at)
    await asyncio.sleep(0.5)
    after_edits = rss_kib(pid)
    await _lsp.stop(client)
    print("server RSS every 2,000 edits (MiB):", " ".join(f"{k / 1024:.0f}" for k in curve))
    return after_index, opened, after_edits, indexed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--edits", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        generate(root, args.lines)
        index_s, parse_s, files, lines = cold_index(root, args.runs)
        index_med, parse_med = statistics.median(index_s), statistics.median(parse_s)
        print(f"workspace: {files} files, {lines} lines (median of {args.runs} runs)")
        print(f"cold index                 {index_med:6.2f} s   (target < 5 s)")
        ratio = index_med / parse_med
        print(f"raw tree-sitter read+parse {parse_med:6.2f} s   index/parse = {ratio:.2f}")
        slices = slice_latency(root, args.slices)
        print(_lsp.row("warm slice (build_context)", slices) + "   (target p95 < 30 ms)")
        edits, big_lines = edit_latency(root, 1000)
        print(
            _lsp.row(f"edit + re-parse + index ({big_lines} lines)", edits)
            + "   (target p95 < 2 ms)"
        )
        after_index, opened, after_edits, indexed = asyncio.run(server_memory(root, args.edits))
        growth = (after_edits - opened) / opened
        print(f"server indexed the workspace in {indexed:.2f} s (over LSP, from initialized)")
        print(f"server RSS after indexing   {after_index / 1024:7.1f} MiB   (target < 400 MiB)")
        print(f"  with the buffer open      {opened / 1024:7.1f} MiB")
        print(
            f"  after {args.edits} edits      {after_edits / 1024:7.1f} MiB   "
            f"growth {growth:+.1%} over the open buffer   (target < +10%)"
        )


if __name__ == "__main__":
    main()
