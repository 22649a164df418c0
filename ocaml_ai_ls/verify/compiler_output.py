"""The OCaml compiler's reports (as dune or `ocamlfind ocamlc` print them) as errors.

A report is a `File "lib/a.ml", line 9, characters 24-25:` header (or `lines
2-3`), an optional excerpt of the source with `^^^` under the spot, then
`Error: ...` (or `Error (warning 8 [partial-match]): ...`, a warning made an
error, kept with its number and severity "warning") whose text may run over
several lines. Plain `Warning` reports are
not errors and are left out. Paths are made relative to the build root:
dune prints them from the root, sometimes under `_build/default/`.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from .result import ERROR, WARNING_SEVERITY, CheckError

_HEADER = re.compile(
    r'^File "(?P<path>[^"]+)", lines? (?P<line>\d+)(?:-(?P<last>\d+))?'
    r"(?:, characters (?P<start>\d+)-(?P<end>\d+))?:\s*$"
)
_EXCERPT = re.compile(r"^\s*(?:\d+ \||\.\.|\^|\s*$)")
_ERROR = re.compile(r"^Error(?: \(warning (?P<warning>\d+)[^)]*\))?: ?(?P<message>.*)$")
#: Lines of dune's own that end a report: the failing command, its chain of causes.
_DUNE_NOISE = re.compile(r"^(?:\(cd |\s*-> required by|\s+\S+ .*\(exit \d+\)$|Hint: try:)")
_BUILD_PREFIX = ("_build/default/",)


def parse_compiler_output(text: str, root: Path | None = None) -> tuple[CheckError, ...]:
    """Every error report in `text`, in order, each once."""
    out: list[CheckError] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        header = _HEADER.match(lines[i])
        i += 1
        if header is None:
            continue
        while i < len(lines) and _EXCERPT.match(lines[i]) and not _ERROR.match(lines[i]):
            if _HEADER.match(lines[i]):
                break
            i += 1
        if i >= len(lines):
            break
        error = _ERROR.match(lines[i])
        if error is None:
            continue  # a warning, or something else: not an error
        message = [error.group("message").strip()]
        i += 1
        while i < len(lines) and not _HEADER.match(lines[i]) and not _DUNE_NOISE.match(lines[i]):
            message.append(lines[i].strip())
            i += 1
        line = int(header.group("line"))
        start, end = header.group("start"), header.group("end")
        found = CheckError(
            path=_relative(header.group("path"), root),
            line=line,
            column=int(start) + 1 if start is not None else 1,
            message=" ".join(m for m in message if m),
            # the end column counts from the start of the last line
            end_line=int(header.group("last") or line),
            end_column=int(end) + 1 if end is not None else 0,
            severity=WARNING_SEVERITY if error.group("warning") else ERROR,
            warning=int(error.group("warning")) if error.group("warning") else None,
        )
        if found not in out:
            out.append(found)
    return tuple(out)


def _relative(path: str, root: Path | None) -> str:
    """`_build/default/lib/a.ml` and `/shadow/lib/a.ml` as `lib/a.ml`."""
    if root is not None and Path(path).is_absolute():
        try:
            path = Path(path).relative_to(root).as_posix()
        except ValueError:
            return path
    posix = PurePosixPath(path).as_posix()
    for prefix in _BUILD_PREFIX:
        if posix.startswith(prefix):
            return posix[len(prefix) :]
    return posix
