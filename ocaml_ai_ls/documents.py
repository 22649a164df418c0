"""Open documents, each with its tree-sitter tree kept up to date incrementally.

Every change is applied to the UTF-8 bytes, the old tree is told about it with
`Tree.edit`, and the new tree is parsed from the old one, so a keystroke in a
large file costs little. Positions are read in the negotiated encoding.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from lsprotocol import types
from tree_sitter import Point, Tree

from .context.parsing import SourceKind, parse
from .positions import Encoding, LineIndex, decode, encode
from .uris import uri_to_path


@dataclass
class Document:
    uri: str
    version: int
    data: bytes
    encoding: Encoding
    kind: SourceKind | None
    tree: Tree | None = None
    _index: LineIndex | None = field(default=None, repr=False)

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
        if self.tree is not None:
            new_index = self.index
            self.tree.edit(
                start_byte=start,
                old_end_byte=end,
                new_end_byte=start + len(new),
                start_point=Point(*start_point),
                old_end_point=Point(*old_end_point),
                new_end_point=Point(*new_index.ts_point(start + len(new))),
            )


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
