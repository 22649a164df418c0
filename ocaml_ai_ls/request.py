"""The `ocaml-ai.generate` contract: its argument and its result.

Argument: `{uri, range?, instruction, candidates?, apply?, comment?}` where
`comment` (our extension) is the range of an instruction comment the edit
removes. Result: `{id, candidates: [{id, model, diff, edit, verification,
files, round}], applied, cancelled, error, rejected: [{id, model, reason}],
timings}`, candidates best first; `round` is the repair round that made it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lsprotocol import types

from .edits.workspace_edit import FileChange, lsp_converter, to_json
from .verify.result import Verification

MAX_INSTRUCTION_CHARS = 4000
MAX_CANDIDATES = 10


class RequestError(ValueError):
    """An argument that does not follow the contract; the message says which field."""


@dataclass(frozen=True)
class GenerateRequest:
    uri: str
    instruction: str
    range: types.Range | None = None
    candidates: int | None = None
    apply: bool = False
    comment: types.Range | None = None


def _range(value: Any, name: str) -> types.Range | None:
    if value is None:
        return None
    try:
        rng: types.Range = lsp_converter().structure(value, types.Range)
    except Exception:
        raise RequestError(
            f"`{name}` must be an LSP range {{start: {{line, character}}, end: ...}}"
        ) from None
    for pos in (rng.start, rng.end):
        if pos.line < 0 or pos.character < 0:
            raise RequestError(f"`{name}` has a negative line or character")
    if (rng.end.line, rng.end.character) < (rng.start.line, rng.start.character):
        rng = types.Range(start=rng.end, end=rng.start)
    return rng


def parse_request(
    args: Any, instruction_required: bool = True, command: str = "ocaml-ai.generate"
) -> GenerateRequest:
    """Check the command's argument: one object (or a one-element list of it).

    `ocaml-ai.context` takes the same object, with the instruction optional.
    """
    if isinstance(args, list | tuple) and len(args) == 1:
        args = args[0]
    if not isinstance(args, Mapping):
        raise RequestError(f"{command} takes one object {{uri, range?, instruction, ...}}")
    uri = args.get("uri")
    if not isinstance(uri, str) or not uri.startswith("file:"):
        raise RequestError("`uri` must be a file: URI")
    instruction = args.get("instruction")
    if not instruction_required and instruction is None:
        instruction = "(none)"
    if not isinstance(instruction, str) or not instruction.strip():
        raise RequestError("`instruction` must be a non-empty string")
    if len(instruction) > MAX_INSTRUCTION_CHARS:
        raise RequestError(f"`instruction` is longer than {MAX_INSTRUCTION_CHARS} characters")
    candidates = args.get("candidates")
    if candidates is not None and (
        isinstance(candidates, bool)
        or not isinstance(candidates, int)
        or not 1 <= candidates <= MAX_CANDIDATES
    ):
        raise RequestError(f"`candidates` must be an integer from 1 to {MAX_CANDIDATES}")
    apply = args.get("apply", False)
    if not isinstance(apply, bool):
        raise RequestError("`apply` must be true or false")
    return GenerateRequest(
        uri=uri,
        instruction=instruction.strip(),
        range=_range(args.get("range"), "range"),
        candidates=candidates,
        apply=apply,
        comment=_range(args.get("comment"), "comment"),
    )


def request_json(req: GenerateRequest) -> dict[str, Any]:
    """The argument object for a command that repeats this request."""
    out: dict[str, Any] = {"uri": req.uri, "instruction": req.instruction, "apply": req.apply}
    if req.range is not None:
        out["range"] = lsp_converter().unstructure(req.range)
    if req.candidates is not None:
        out["candidates"] = req.candidates
    if req.comment is not None:
        out["comment"] = lsp_converter().unstructure(req.comment)
    return out


@dataclass(frozen=True)
class Candidate:
    """One usable edit, verified."""

    id: str
    model: str
    diff: str
    edit: types.WorkspaceEdit
    verification: Verification
    changes: tuple[FileChange, ...]
    #: 0 for a first answer; k for one made in the k-th repair round.
    round: int = 0

    @property
    def changed_lines(self) -> int:
        return sum(
            1
            for line in self.diff.splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "diff": self.diff,
            "edit": to_json(self.edit),
            "verification": self.verification.to_json(),
            "files": [c.rel for c in self.changes],
            "round": self.round,
        }


@dataclass(frozen=True)
class Rejected:
    """An answer that gave no usable edit, and why."""

    id: str
    model: str
    reason: str


@dataclass
class GenerateResult:
    id: str
    candidates: list[Candidate] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    applied: bool = False
    cancelled: bool = False
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    #: The A/B arm that served the request ("" without a split), and what it used.
    arm: str = ""
    provider: str = ""
    model: str = ""
    strategy: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    #: Repair rounds that asked the model again.
    repair_rounds: int = 0
    #: Answers the model gave (first round and repairs), for the metrics store.
    answers: list[str] = field(default_factory=list)
    #: The prompt's messages, for the metrics store when prompts are kept.
    prompt: list[dict[str, str]] = field(default_factory=list)

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def failure(self) -> str:
        """Why there is no edit, in one message for the user."""
        if self.error:
            return self.error
        if self.cancelled:
            return "cancelled"
        if self.rejected:
            reasons = "; ".join(r.reason for r in self.rejected[:3])
            return f"the model's answer had no usable edit: {reasons}"
        return "no edit was produced"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "candidates": [c.to_json() for c in self.candidates],
            "applied": self.applied,
            "cancelled": self.cancelled,
            "error": self.error,
            "rejected": [{"id": r.id, "model": r.model, "reason": r.reason} for r in self.rejected],
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
            "arm": self.arm,
            "provider": self.provider,
            "model": self.model,
            "strategy": self.strategy,
        }
