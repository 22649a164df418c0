"""The plain data the context stage passes from step to step.

index (facts per file) ─▶ candidates ─▶ pack ─▶ render: a `Candidate` is some
lines of one file that may help the model, with a score (how likely the
change needs it) and the reason for it; `pack` turns the best of them into
`Piece`s within the budget and keeps the best of the rest as `Dropped`; a
`Context` is what the prompt shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..positions import EOL_STR, encode

#: Roles of a piece, the most needed first (the number is its `rank` in JSON).
TARGET, FILE, INTERFACE, DEFINITION, TYPE, MODULE, DUNE, CALLER = 1, 2, 3, 4, 5, 6, 7, 8
ROLES = {
    TARGET: "the target",
    FILE: "the rest of the file being edited",
    INTERFACE: "the other half of the module",
    DEFINITION: "definitions the target uses or the instruction names",
    TYPE: "types of what the target uses",
    MODULE: "what the modules in scope offer",
    DUNE: "the dune stanza",
    CALLER: "callers of the target",
}


#: A piece costs this much on top of its lines: the `...` line that separates it
#: from the file's other pieces in the prompt.
GAP_TOKENS = 3
#: The first piece of a file costs this much more: the file's header and fences.
FILE_TOKENS = 20


def estimate_tokens(lines: Iterable[str]) -> int:
    """Tokens a numbered excerpt costs: about 4 bytes per token, plus the `  12| ` prefix.

    Deliberately simple and stable (no tokenizer download); it errs high for
    code, which is what a budget wants.
    """
    return sum(len(encode(line)) + 7 for line in lines) // 4 + 1


def split_lines(text: str) -> list[str]:
    """Lines without terminators; a final newline does not make an extra line."""
    lines = EOL_STR.split(text)
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return lines


@dataclass(frozen=True)
class Candidate:
    """Lines of one file that may help, in up to two forms.

    `lines` (0-based) is the full form (a definition with its doc comment);
    `brief` a shorter one (the bare signature) used when the full form is
    not worth its cost, or empty when there is none. `score` estimates how
    likely the change needs it (0..1; the target is always kept).
    """

    role: int
    rel: str
    lines: tuple[int, ...]
    texts: tuple[str, ...]
    score: float
    reason: str
    label: str
    brief: tuple[int, ...] = ()
    #: Tokens of the form shown by default (brief, else full) and of the full form,
    #: each with its `...` line; computed when not given.
    cost: int = 0
    full_cost: int = 0

    def __post_init__(self) -> None:
        if not self.full_cost:
            object.__setattr__(self, "full_cost", estimate_tokens(self.texts) + GAP_TOKENS)
        if not self.cost:
            cost = self.full_cost
            if self.brief:
                texts = dict(zip(self.lines, self.texts, strict=True))
                cost = estimate_tokens(texts[n] for n in self.brief) + GAP_TOKENS
            object.__setattr__(self, "cost", cost)


@dataclass(frozen=True)
class Piece:
    """Some lines of one file (1-based numbers, maybe with gaps) and why they are shown."""

    rank: int
    rel: str
    numbers: tuple[int, ...]
    texts: tuple[str, ...]
    label: str
    score: float = 1.0
    reason: str = ""

    @property
    def tokens(self) -> int:
        return estimate_tokens(self.texts)

    @property
    def first_line(self) -> int:
        return self.numbers[0] if self.numbers else 0

    @property
    def last_line(self) -> int:
        return self.numbers[-1] if self.numbers else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "role": ROLES[self.rank],
            "label": self.label,
            "path": self.rel,
            "startLine": self.first_line,
            "endLine": self.last_line,
            "lines": list(self.numbers),
            "text": "\n".join(self.texts),
            "tokens": self.tokens,
            "score": round(self.score, 3),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Dropped:
    """A candidate that did not make it into the prompt, and why."""

    piece: Piece
    why: str

    def to_json(self) -> dict[str, Any]:
        return {**self.piece.to_json(), "why": self.why}


@dataclass(frozen=True)
class Target:
    """The item the instruction is about (1-based, inclusive lines)."""

    rel: str
    start_line: int
    end_line: int
    kind: str
    name: str | None
    text: str


@dataclass(frozen=True)
class Packed:
    """What `pack` took (in the order it took it), the best of what it left, and what
    the taken pieces cost (a line shown twice counted once)."""

    pieces: tuple[Piece, ...]
    dropped: tuple[Dropped, ...]
    tokens: int


@dataclass(frozen=True)
class Context:
    """What the prompt shows: pieces by role, the most needed first (the target), and
    within a role by score."""

    rel: str
    target: Target | None
    pieces: tuple[Piece, ...]
    dropped: tuple[Dropped, ...] = ()
    budget: int = 0
    total_lines: dict[str, int] = field(default_factory=dict)
    #: What the pieces cost, as `pack` counted them.
    tokens: int = 0

    @property
    def files(self) -> tuple[str, ...]:
        """Relative paths of every file shown, so a bare name can be resolved."""
        return tuple(dict.fromkeys(p.rel for p in self.pieces))

    def to_json(self) -> dict[str, Any]:
        target = self.target
        return {
            "path": self.rel,
            "target": None
            if target is None
            else {
                "path": target.rel,
                "startLine": target.start_line,
                "endLine": target.end_line,
                "kind": target.kind,
                "name": target.name,
            },
            "budget": self.budget,
            "tokens": self.tokens,
            "pieces": [p.to_json() for p in self.pieces],
            "dropped": [d.to_json() for d in self.dropped],
        }
