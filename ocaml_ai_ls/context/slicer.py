"""One request's context, one way through the stage:

    index (facts per file) ─▶ candidates (each scored, with a reason)
        ─▶ pack (the budget) ─▶ Context (rendered by `render`)

The index already holds every file's facts; here the request's own text
(its instruction comment removed) is read the same way, the target item is
found, and the steps run in order, each on the plain data the one before
returned.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

from cachetools import LRUCache
from tree_sitter import Tree

from ..positions import encode
from ..uris import path_to_uri
from ..workspace import FileText, Workspace
from .candidates import Request, collect
from .index import SourceFile, WorkspaceIndex
from .items import enclosing_item
from .model import Context, Target, estimate_tokens, split_lines
from .modules import file_entries
from .pack import pack
from .parsing import SourceKind, parse
from .summary import FileSummary, summarize

#: Lines of files on disk by (path, modification time, size): a request reads dozens
#: of files that seldom change between two requests.
_DISK_LINES: LRUCache[tuple[Path, int, int], list[str]] = LRUCache(maxsize=256)
_DISK_LOCK = threading.Lock()


class _Texts:
    """File lines for candidates: open buffers over disk, read once per request."""

    def __init__(self, ws: Workspace, current: Path, lines: list[str]) -> None:
        self.ws = ws
        self._lines: dict[Path, list[str] | None] = {current: lines}

    def lines(self, path: Path) -> list[str] | None:
        if path not in self._lines:
            self._lines[path] = self._read(path)
        return self._lines[path]

    def _read(self, path: Path) -> list[str] | None:
        if self.ws.documents.get(path_to_uri(path)) is None:
            try:
                stat = path.stat()
            except OSError:
                return None
            key = (path, stat.st_mtime_ns, stat.st_size)
            with _DISK_LOCK:
                cached = _DISK_LINES.get(key)
            if cached is not None:
                return cached
            found = self.ws.read(path)
            lines = split_lines(found.text) if found is not None else None
            if lines is not None and found is not None and not found.is_open:
                with _DISK_LOCK:
                    _DISK_LINES[key] = lines
            return lines
        found = self.ws.read(path)
        return split_lines(found.text) if found is not None else None


def warm(
    index: WorkspaceIndex, ws: Workspace, cancelled: Callable[[], bool] = lambda: False
) -> int:
    """Work every request would otherwise do the first time it meets a file, done once
    after indexing (as the shadow builds are warmed): each module's interface read into
    its entries, each file's definitions placed. Returns the files warmed."""
    texts = _Texts(ws, ws.root, [])
    done = 0
    for unit in list(index.tables.units.values()):
        if cancelled():
            break
        for source in unit.files():
            summary = index.summary(source.path)
            if summary is None:
                continue
            summary.defined("")  # the definitions by name
            if source is (unit.mli or unit.ml):
                file_entries(summary, partial(texts.lines, source.path))
            done += 1
    return done


def narrow(
    lines: list[str], span: tuple[int, int], around: tuple[int, int], limit: int
) -> tuple[int, int]:
    """The lines of an item that cost more than `limit` tokens narrowed to a window
    around the selection (`around`, 0-based lines, kept whole), growing both ways
    until the window costs `limit`: a 600-line test list is not the model's to
    rewrite, the part at the cursor is."""
    start, end = span
    if estimate_tokens(lines[start : end + 1]) <= limit:
        return span
    lo, hi = max(start, min(around[0], end)), min(end, max(around[1], start))
    cost = estimate_tokens(lines[lo : hi + 1])
    while cost < limit and (lo > start or hi < end):
        if lo > start:
            lo -= 1
            cost += estimate_tokens([lines[lo]])
        if hi < end and cost < limit:
            hi += 1
            cost += estimate_tokens([lines[hi]])
    return lo, hi


def _facts(
    index: WorkspaceIndex, current: FileText, data: bytes, kind: SourceKind
) -> tuple[Tree, FileSummary]:
    """The request text's tree and summary: the open buffer's own when the text is the
    buffer's (its tree is kept up to date keystroke by keystroke, and the index has
    summarised it), else read afresh (an instruction comment taken out, a file on disk)."""
    doc = index.documents.get(current.uri) if index.documents is not None else None
    if doc is not None and doc.tree is not None and doc.kind is kind and doc.data == data:
        index.update_document(doc)
        summary = index.summary(current.path)
        if summary is not None:
            return doc.tree, summary
    tree = parse(data, kind)
    return tree, summarize(tree, data, kind, index.cache)


def read_request(
    index: WorkspaceIndex,
    current: FileText,
    text: str,
    selection: tuple[int, int] | None,
    instruction: str,
    max_target_tokens: int = 1500,
) -> Request:
    """The request's facts: its text summarised as the index would, and the target item
    around `selection` (UTF-8 byte offsets into `text`; None: the whole file), narrowed
    to the lines around the selection when it costs more than `max_target_tokens`."""
    lines = split_lines(text)
    kind = SourceKind.of(current.path)
    if kind is None:
        return Request(current.path, current.rel, lines, None, None, None, None, None, instruction)
    data = encode(text)
    tree, summary = _facts(index, current, data, kind)
    source = SourceFile(current.path, current.rel, kind, summary)
    span: tuple[int, int] | None = None
    target: Target | None = None
    item = enclosing_item(tree, *selection) if selection is not None else None
    if item is not None and selection is not None:
        around = (data.count(b"\n", 0, selection[0]), data.count(b"\n", 0, selection[1]))
        span = narrow(lines, (item.start_line, item.end_line), around, max_target_tokens)
        body = "\n".join(lines[span[0] : span[1] + 1])
        target = Target(current.rel, span[0] + 1, span[1] + 1, item.kind, item.name, body)
    return Request(
        current.path, current.rel, lines, kind, summary, source, span, target, instruction
    )


def build_context(
    ws: Workspace,
    current: FileText,
    text: str,
    selection: tuple[int, int] | None,
    *,
    instruction: str = "",
    budget: int = 6000,
    full_file_tokens: int = 1500,
    max_callers: int = 10,
    index: WorkspaceIndex | None = None,
) -> Context:
    """The slice for a request on `current` whose text (maybe cleaned) is `text`.

    `selection` holds UTF-8 byte offsets into `text`; None means the whole file.
    """
    index = index or WorkspaceIndex(ws.root, ws.documents)
    request = read_request(index, current, text, selection, instruction, full_file_tokens)
    texts = _Texts(ws, current.path, request.lines)
    candidates = collect(
        request, index, texts.lines, full_file_tokens=full_file_tokens, max_callers=max_callers
    )
    packed = pack(candidates, budget, current.rel)
    totals = {current.rel: len(request.lines)}
    for piece in packed.pieces:
        if piece.rel not in totals:
            lines = texts.lines(ws.root / piece.rel)
            totals[piece.rel] = len(lines) if lines is not None else piece.last_line
    pieces = sorted(packed.pieces, key=lambda p: (p.rank, -p.score))
    return Context(
        current.rel, request.target, tuple(pieces), packed.dropped, budget, totals, packed.tokens
    )
