"""What the verifier says about a candidate, in the command's JSON shape."""

from __future__ import annotations

from dataclasses import asdict, dataclass
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


@dataclass(frozen=True)
class Verification:
    status: str
    stages: tuple[Stage, ...] = ()
    errors: tuple[CheckError, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "stages": [asdict(s) for s in self.stages],
            "errors": [asdict(e) for e in self.errors],
        }
