"""The compiler's errors as LSP diagnostics of our own (source `ocaml-ai`).

Published on save, so `AI: fix …` quick fixes work in editors that hand a
server only its own diagnostics. Compiler columns count bytes; LSP positions
count in the negotiated encoding, so each error is converted through the
text the editor has (the open buffer, else the disk).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from lsprotocol import types

from .positions import Encoding, LineIndex, encode
from .uris import path_to_uri
from .verify.result import WARNING_SEVERITY, CheckError

SOURCE = "ocaml-ai"
#: Diagnostics published per file, at most (the first errors are the ones that matter).
MAX_PER_FILE = 50


def diagnostics_by_uri(
    errors: Iterable[CheckError],
    root: Path,
    read: Callable[[Path], str | None],
    encoding: Encoding,
) -> dict[str, list[types.Diagnostic]]:
    """Errors grouped by file URI; errors about no file, or a file that cannot be
    read, are left out."""
    out: dict[str, list[types.Diagnostic]] = {}
    indexes: dict[Path, LineIndex | None] = {}
    for error in errors:
        if not error.path or error.line < 1:
            continue
        path = root / error.path
        if path not in indexes:
            text = read(path)
            indexes[path] = LineIndex(encode(text), encoding) if text is not None else None
        index = indexes[path]
        if index is None:
            continue
        found = out.setdefault(path_to_uri(path), [])
        if len(found) < MAX_PER_FILE:
            found.append(_diagnostic(error, index))
    return out


def _diagnostic(error: CheckError, index: LineIndex) -> types.Diagnostic:
    start = _offset(index, error.line, error.column)
    if error.end_line and error.end_column:
        end = _offset(index, error.end_line, error.end_column)
    else:  # no end known: to the end of the line
        end = _offset(index, error.line, 1 << 30)
    warning = error.severity == WARNING_SEVERITY
    return types.Diagnostic(
        range=index.range(start, max(start, end)),
        message=error.message,
        # a warning the build treats as an error still fails it, but says less
        severity=types.DiagnosticSeverity.Warning if warning else types.DiagnosticSeverity.Error,
        code=f"warning {error.warning}" if warning and error.warning is not None else None,
        source=SOURCE,
    )


def _offset(index: LineIndex, line: int, column: int) -> int:
    """Byte offset of a 1-based line and byte column, clamped to the line."""
    row = min(max(line - 1, 0), index.line_count - 1)
    start = index.starts[row]
    end = index.starts[row + 1] if row + 1 < index.line_count else len(index.data)
    content_end = end
    while content_end > start and index.data[content_end - 1] in b"\r\n":
        content_end -= 1
    return min(start + max(column - 1, 0), content_end)
