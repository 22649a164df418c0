"""Applying a WorkspaceEdit the way an editor does, for the headless client and tests.

All of it or none: every operation is checked and every new text computed
before anything is written; a versioned edit for a document at another
version is refused, as editors refuse it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from lsprotocol import types

from ..positions import Encoding, LineIndex, decode, encode

#: The current (text, version) of a URI, or None when there is no such file.
Reader = Callable[[str], tuple[str, int | None] | None]


class ApplyRefused(ValueError):
    """The edit cannot be applied; the message is the failure reason for the server."""


def _operations(edit: types.WorkspaceEdit) -> list[Any]:
    ops: list[Any] = list(edit.document_changes or [])
    for uri, edits in (edit.changes or {}).items():
        ops.append(
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=None),
                edits=list(edits),
            )
        )
    return ops


def _apply_text_edits(text: str, edits: list[Any], encoding: Encoding, uri: str) -> str:
    data = encode(text)
    index = LineIndex(data, encoding)
    spans: list[tuple[int, int, str]] = []
    for text_edit in edits:
        if not isinstance(text_edit, types.TextEdit):
            raise ApplyRefused(f"unsupported text edit {type(text_edit).__name__}")
        rng = text_edit.range
        spans.append((index.offset(rng.start), index.offset(rng.end), text_edit.new_text))
    spans.sort(key=lambda s: (s[0], s[1]))
    for (_, end1, _), (start2, _, _) in itertools.pairwise(spans):
        if start2 < end1:
            raise ApplyRefused(f"overlapping edits in {uri}")
    for start, end, new in reversed(spans):
        data = data[:start] + encode(new) + data[end:]
    return decode(data)


def plan_workspace_edit(
    edit: types.WorkspaceEdit, read: Reader, encoding: Encoding
) -> dict[str, str]:
    """The new text of every URI the edit touches; ApplyRefused if any part fails."""
    planned: dict[str, tuple[str, int | None]] = {}

    def current(uri: str) -> tuple[str, int | None] | None:
        return planned[uri] if uri in planned else read(uri)

    for op in _operations(edit):
        if isinstance(op, types.CreateFile):
            if current(op.uri) is not None:
                options = op.options
                if not (options and (options.overwrite or options.ignore_if_exists)):
                    raise ApplyRefused(f"{op.uri} already exists")
                if options.ignore_if_exists and not options.overwrite:
                    continue
            planned[op.uri] = ("", None)
        elif isinstance(op, types.TextDocumentEdit):
            uri = op.text_document.uri
            now = current(uri)
            if now is None:
                raise ApplyRefused(f"{uri} does not exist")
            text, version = now
            wanted = op.text_document.version
            if wanted is not None and uri not in planned and wanted != version:
                raise ApplyRefused(f"{uri} is at version {version}, the edit is for {wanted}")
            planned[uri] = (_apply_text_edits(text, list(op.edits), encoding, uri), version)
        else:
            raise ApplyRefused(f"unsupported operation {type(op).__name__}")
    return {uri: text for uri, (text, _) in planned.items()}
