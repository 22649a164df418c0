"""The first check: every changed OCaml file parses (no ERROR or MISSING node)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..context.parsing import SourceKind, parse, syntax_errors
from ..positions import encode
from .result import OK, PARSE_ERROR, CheckError, Stage, Verification


def check_syntax(files: Sequence[tuple[str, str]]) -> Verification:
    """Parse each (relative path, new text); other file kinds are not checked."""
    started = time.perf_counter()
    errors: list[CheckError] = []
    for rel, text in files:
        kind = SourceKind.of(rel)
        if kind is None:
            continue
        data = encode(text)
        for err in syntax_errors(parse(data, kind), data):
            errors.append(CheckError(rel, err.line + 1, err.column + 1, err.message))
    status = PARSE_ERROR if errors else OK
    ms = round((time.perf_counter() - started) * 1000, 2)
    return Verification(status, (Stage("parse", status, ms),), tuple(errors))
