"""What the verifier says about a candidate, in the command's JSON shape."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, replace
from typing import Any

OK = "ok"
PARSE_ERROR = "parse_error"
TYPE_ERROR = "type_error"
#: It type-checks, but the build fails on warnings only (dune's dev profile makes
#: them errors): much closer to right than a type error, yet not done.
WARNING = "warning"
TEST_FAILURE = "test_failure"
TIMEOUT = "timeout"
UNVERIFIED = "unverified"
#: Statuses, best first: tests pass > only warnings > type-checks but tests fail >
#: (not known) > type error > does not parse.
RANKED = (OK, WARNING, TEST_FAILURE, TIMEOUT, UNVERIFIED, TYPE_ERROR, PARSE_ERROR)
#: Statuses where the compiler rejected the candidate (repair rounds and baselines).
REJECTED = (WARNING, TYPE_ERROR, PARSE_ERROR)
ERROR, WARNING_SEVERITY = "error", "warning"


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
    #: "error", or "warning" for a warning the build treats as an error (`Error
    #: (warning 32 [unused-value-declaration])`), whose number is `warning`.
    severity: str = ERROR
    warning: int | None = None


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
        """The compiler rejected the change itself: it does not parse, type-check or build
        without warnings, and not only because of errors the project already had."""
        return self.status in REJECTED and bool(self.new_errors)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "stages": [asdict(s) for s in self.stages],
            "errors": [asdict(e) for e in self.errors],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verification:
        """The inverse of `to_json` (a check answered by another process: a Ray actor)."""
        return cls(
            data["status"],
            tuple(Stage(**s) for s in data["stages"]),
            tuple(CheckError(**e) for e in data["errors"]),
        )


def compile_status(errors: tuple[CheckError, ...]) -> str:
    """The status of a failed build from its errors: a syntax error, warnings only,
    else a type error (dune's own failures, with no located error, count as one)."""
    if errors and all(e.message.startswith("Syntax error") for e in errors):
        return PARSE_ERROR
    if errors and all(e.severity == WARNING_SEVERITY for e in errors):
        return WARNING
    return TYPE_ERROR


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
