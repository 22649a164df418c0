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
    """One error, 1-based line and column, path relative to the root."""

    path: str
    line: int
    column: int
    message: str


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
