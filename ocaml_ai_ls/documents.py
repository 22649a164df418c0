"""Open documents, each with its tree-sitter tree kept up to date incrementally.

Every change is applied to the UTF-8 bytes, the old tree is told about it with
`Tree.edit`, and the new tree is parsed from the old one, so a keystroke in a
large file costs little. Positions are read in the negotiated encoding.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from lsprotocol import types
from tree_sitter import Point, Tree

from .context.parsing import SourceKind, parse
from .positions import Encoding, LineIndex, decode, encode
from .uris import uri_to_path

#: Edits a document remembers; a reader further behind re-reads the whole text.
MAX_EDITS = 64
_serials = itertools.count(1)


@dataclass(frozen=True)
class Edit:
    """One replacement in byte offsets, and how many lines it added (or removed)."""

    start: int
    old_end: int
    new_end: int
    line_delta: int


@dataclass
class Document:
    uri: str
    version: int
    data: bytes
    encoding: Encoding
    kind: SourceKind | None
    tree: Tree | None = None
    _index: LineIndex | None = field(default=None, repr=False)
    #: Counts changes; with `serial`, tells a reader which text it last read.
    generation: int = 0
    serial: int = field(default_factory=lambda: next(_serials))
    #: The last edits, by the generation they made; None for a whole-text change.
    log: deque[tuple[int, Edit | None]] = field(
        default_factory=lambda: deque(maxlen=MAX_EDITS), repr=False
    )

    @classmethod
    def open(cls, uri: str, version: int, text: str, encoding: Encoding) -> Document:
        path = uri_to_path(uri)
        kind = SourceKind.of(path) if path else None
        doc = cls(uri, version, encode(text), encoding, kind)
        if kind is not None:
            doc.tree = parse(doc.data, kind)
        return doc

    @property
    def text(self) -> str:
        return decode(self.data)

    @property
    def index(self) -> LineIndex:
        if self._index is None:
            self._index = LineIndex(self.data, self.encoding)
        return self._index

    def apply(self, changes: Iterable[types.TextDocumentContentChangeEvent], version: int) -> None:
        """Apply editor changes in order, then re-parse once from the edited tree."""
        for change in changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                self._apply_partial(change)
            else:
                self.data = encode(change.text)
                self._index = None
                self.tree = None  # a whole new text: nothing to reuse
                self.generation += 1
                self.log.append((self.generation, None))
        self.version = version
        if self.kind is not None:
            self.tree = parse(self.data, self.kind, self.tree)

    def _apply_partial(self, change: types.TextDocumentContentChangePartial) -> None:
        index = self.index
        start = index.offset(change.range.start)
        end = index.offset(change.range.end)
        if end < start:
            start, end = end, start
        new = encode(change.text)
        start_point = index.ts_point(start)
        old_end_point = index.ts_point(end)
        self.data = self.data[:start] + new + self.data[end:]
        self._index = None
        # where the inserted text ends, from the text itself (rows count `\n`, as
        # tree-sitter does): no second pass over the document
        newlines = new.count(b"\n")
        new_end_point = (
            (start_point[0] + newlines, len(new) - new.rfind(b"\n") - 1)
            if newlines
            else (start_point[0], start_point[1] + len(new))
        )
        self.generation += 1
        edit = Edit(start, end, start + len(new), new_end_point[0] - old_end_point[0])
        self.log.append((self.generation, edit))
        if self.tree is not None:
            self.tree.edit(
                start_byte=start,
                old_end_byte=end,
                new_end_byte=start + len(new),
                start_point=Point(*start_point),
                old_end_point=Point(*old_end_point),
                new_end_point=Point(*new_end_point),
            )

    def edits_since(self, generation: int) -> list[Edit] | None:
        """The edits made after `generation`, in order; None when they are not all
        known (a whole-text change, or older than the log keeps)."""
        if generation == self.generation:
            return []
        newer = [(g, e) for g, e in self.log if g > generation]
        if not newer or newer[0][0] != generation + 1:
            return None
        edits = [e for _, e in newer]
        return None if any(e is None for e in edits) else [e for e in edits if e is not None]


class DocumentStore:
    """The documents the editor has open, by URI."""

    def __init__(self) -> None:
        self._docs: dict[str, Document] = {}
        self.encoding = Encoding.UTF16

    def open(self, item: types.TextDocumentItem) -> Document:
        doc = Document.open(item.uri, item.version, item.text, self.encoding)
        self._docs[item.uri] = doc
        return doc

    def change(self, params: types.DidChangeTextDocumentParams) -> Document | None:
        doc = self._docs.get(params.text_document.uri)
        if doc is not None:
            doc.apply(params.content_changes, params.text_document.version)
        return doc

    def close(self, uri: str) -> None:
        self._docs.pop(uri, None)

    def get(self, uri: str) -> Document | None:
        return self._docs.get(uri)

    def __iter__(self) -> Iterator[Document]:
        return iter(list(self._docs.values()))

    def __len__(self) -> int:
        return len(self._docs)
