"""From new file texts to what an editor applies: a WorkspaceEdit and a diff.

Text edits cover only the changed line ranges. Open documents carry the
editor's version, so an editor refuses the edit if the buffer changed since
the request and nothing is lost; files only on disk carry version null; new
files are created with `CreateFile`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.protocol import default_converter

from ..positions import Encoding, end_position

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


@cache
def lsp_converter() -> Any:
    """pygls's converter (LSP JSON ↔ lsprotocol types), made once, on first use: making
    one costs 15-40 ms of a start."""
    return default_converter()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class FileChange:
    """One file's old and new text; `old` None means the file is new."""

    path: Path
    rel: str
    uri: str
    old: str | None
    new: str
    version: int | None = None


class EditUnsupported(ValueError):
    """The editor cannot apply this edit (e.g. it cannot create files)."""


def split_keepends(text: str) -> list[str]:
    """Lines with their terminators (LSP's \\n, \\r\\n or \\r)."""
    return _LINE.findall(text)


def text_edits(old: str, new: str, encoding: Encoding) -> list[types.TextEdit]:
    """Minimal line-range edits turning `old` into `new`."""
    a, b = split_keepends(old), split_keepends(new)
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    mid_a, mid_b = a[head : len(a) - tail], b[head : len(b) - tail]
    matcher = difflib.SequenceMatcher(None, mid_a, mid_b, autojunk=False)
    eof = end_position(old, encoding)

    def pos(line: int) -> types.Position:
        return types.Position(line=line, character=0) if line < len(a) else eof

    edits: list[types.TextEdit] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        edits.append(
            types.TextEdit(
                range=types.Range(start=pos(head + i1), end=pos(head + i2)),
                new_text="".join(mid_b[j1:j2]),
            )
        )
    return edits


def build_workspace_edit(
    changes: Sequence[FileChange],
    encoding: Encoding,
    document_changes: bool = True,
    create_files: bool = True,
) -> types.WorkspaceEdit:
    """A WorkspaceEdit in the richest form the editor supports."""
    if not document_changes:
        plain: dict[str, list[types.TextEdit]] = {}
        for change in changes:
            if change.old is None:
                raise EditUnsupported(
                    f"the editor cannot create files, and the edit creates {change.rel}"
                )
            plain[change.uri] = text_edits(change.old, change.new, encoding)
        return types.WorkspaceEdit(changes=plain)
    ops: list[types.TextDocumentEdit | types.CreateFile | types.RenameFile | types.DeleteFile] = []
    for change in changes:
        if change.old is None:
            if not create_files:
                raise EditUnsupported(
                    f"the editor cannot create files, and the edit creates {change.rel}"
                )
            ops.append(
                types.CreateFile(
                    uri=change.uri,
                    options=types.CreateFileOptions(overwrite=False, ignore_if_exists=False),
                )
            )
            edits = [
                types.TextEdit(
                    range=types.Range(
                        start=types.Position(line=0, character=0),
                        end=types.Position(line=0, character=0),
                    ),
                    new_text=change.new,
                )
            ]
            version = None
        else:
            edits = text_edits(change.old, change.new, encoding)
            version = change.version
        ops.append(
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(
                    uri=change.uri, version=version
                ),
                edits=list(edits),
            )
        )
    return types.WorkspaceEdit(document_changes=ops)


def to_json(edit: types.WorkspaceEdit) -> dict[str, Any]:
    """The LSP JSON form (camelCase, nulls kept where the protocol needs them)."""
    data: dict[str, Any] = lsp_converter().unstructure(edit)
    return data


def from_json(data: Any) -> types.WorkspaceEdit:
    edit: types.WorkspaceEdit = lsp_converter().structure(data, types.WorkspaceEdit)
    return edit


def _diff_lines(text: str) -> list[str]:
    """Lines ending in \n; a last line without one carries git's marker."""
    lines = [line.rstrip("\r\n") + "\n" for line in split_keepends(text)]
    if text and not text.endswith(("\n", "\r")):
        lines[-1] += "\\ No newline at end of file\n"
    return lines


def unified_diff(changes: Sequence[FileChange]) -> str:
    """A `git diff`-style unified diff of the changes (LF, paths a/ b/)."""
    out: list[str] = []
    for change in changes:
        old = _diff_lines(change.old) if change.old is not None else []
        src = f"a/{change.rel}" if change.old is not None else "/dev/null"
        out.extend(difflib.unified_diff(old, _diff_lines(change.new), src, f"b/{change.rel}"))
    return "".join(out)
