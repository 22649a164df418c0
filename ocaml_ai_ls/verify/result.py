"""What the verifier says about a candidate, in the command's JSON shape."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, replace
from typing import Any

OK = "ok"
PARSE_ERROR = "parse_error"
TYPE_ERROR = "type_error"
TEST_FAILURE = "test_failure"
TIMEOUT = "timeout"
UNVERIFIED = "unverified"
#: Statuses, best first: tests pass > type-checks > (not known) > parses.
RANKED = (OK, TEST_FAILURE, TIMEOUT, UNVERIFIED, TYPE_ERROR, PARSE_ERROR)


@dataclass(frozen=True)
class Stage:
    name: str
    status: str
    ms: float


@dataclass(frozen=True)
class CheckError:
    """One error, path relative to the root; 1-based lines and columns, columns
    counting bytes (as the compiler does); the end is exclusive, 0 when unknown.
    An empty path (line 0) is an error about no place: dune's own, a timeout."""

    path: str
    line: int
    column: int
    message: str
    end_line: int = 0
    end_column: int = 0
    #: The project had this error before the change (same file and message).
    preexisting: bool = False


@dataclass(frozen=True)
class Verification:
    status: str
    stages: tuple[Stage, ...] = ()
    errors: tuple[CheckError, ...] = ()

    @property
    def new_errors(self) -> tuple[CheckError, ...]:
        """The errors the change brought (all of them unless compared to a baseline)."""
        return tuple(e for e in self.errors if not e.preexisting)

    @property
    def failed(self) -> bool:
        """The compiler rejected the change itself: it does not parse or type-check, and
        not only because of errors the project already had."""
        return self.status in (TYPE_ERROR, PARSE_ERROR) and bool(self.new_errors)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "stages": [asdict(s) for s in self.stages],
            "errors": [asdict(e) for e in self.errors],
        }


def against_baseline(found: Verification, baseline: Verification) -> Verification:
    """`found` with the errors the project already had (`baseline`: the project checked
    as it is) marked `preexisting`, matched by file and message, each at most as often
    as the baseline has it (lines move with the change, so they are not compared)."""
    had = Counter((e.path, e.message) for e in baseline.errors if e.path)
    marked: list[CheckError] = []
    for error in found.errors:
        key = (error.path, error.message)
        if had[key] > 0:
            had[key] -= 1
            error = replace(error, preexisting=True)
        marked.append(error)
    return replace(found, errors=tuple(marked))
