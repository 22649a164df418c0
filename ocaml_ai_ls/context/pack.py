"""Packing: the best candidates that fit the token budget, as pieces of the prompt.

The target is always kept. The others are a knapsack: each is worth its score
(how likely the change needs it) and costs its tokens, so they are taken by
score per token, best first; a few signatures that are each fairly likely
beat one long stanza that is seldom needed. A candidate goes in by its brief
form (the bare signature); a likely one (`FULL_SCORE`) whose doc comment is
short enough (`DOC_TOKENS`) goes in whole. A candidate is never cut: what
does not fit is dropped whole, and packing goes on with the next, smaller
ones. A line already shown costs nothing again; a candidate with nothing new
is left out.

Files other than the one being edited share at most `OTHER_FILES_SHARE` of
the budget, so that file keeps room for its own definitions however much
the rest of the project offers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .model import (
    FILE_TOKENS,
    GAP_TOKENS,
    TARGET,
    Candidate,
    Dropped,
    Packed,
    Piece,
    estimate_tokens,
)

#: From this score on a candidate is shown whole when its extra lines are few.
FULL_SCORE = 0.5
#: What the whole form of a likely candidate may cost beyond its brief form.
DOC_TOKENS = 80
#: The share of the budget that files other than the one being edited may take.
OTHER_FILES_SHARE = 0.65
#: Dropped candidates reported, at most (the best of them).
MAX_DROPPED = 40


@dataclass
class _Budget:
    total: int
    elsewhere: int
    home: str
    used: int = 0
    used_elsewhere: int = 0

    def left(self, rel: str) -> int:
        if rel == self.home:
            return self.total - self.used
        return min(self.total - self.used, self.elsewhere - self.used_elsewhere)

    def take(self, rel: str, cost: int) -> None:
        self.used += cost
        if rel != self.home:
            self.used_elsewhere += cost


def _cost(c: Candidate, form: tuple[int, ...], seen: set[int]) -> int:
    """What a form of a candidate costs given the lines already shown of its file
    (the precomputed cost when none of them is)."""
    if seen.isdisjoint(form):
        return c.cost if form is (c.brief or c.lines) else c.full_cost
    texts = dict(zip(c.lines, c.texts, strict=True))
    new = [texts[n] for n in form if n not in seen]
    return estimate_tokens(new) + GAP_TOKENS if new else 0


def pack(candidates: Sequence[Candidate], budget: int, home: str = "") -> Packed:
    """Pieces in the order they were taken, and the best of what did not fit
    (`home`: the file being edited)."""
    shown: dict[str, set[int]] = {}
    left = _Budget(budget, int(budget * OTHER_FILES_SHARE), home)
    kept: list[Piece] = []
    missed: list[tuple[Candidate, tuple[int, ...], int]] = []
    order = sorted(candidates, key=lambda c: (c.role != TARGET, -c.score / c.cost))
    for c in order:  # stable: equal values keep their order
        seen = shown.setdefault(c.rel, set())
        form = c.brief or c.lines
        cost = _cost(c, form, seen)
        if cost == 0:
            continue  # everything is shown already
        cost += FILE_TOKENS if not seen else 0
        if c.role != TARGET and cost > left.left(c.rel):
            missed.append((c, form, cost))
            continue
        if c.brief and c.score >= FULL_SCORE:
            extra = _cost(c, c.lines, seen) - _cost(c, c.brief, seen)
            if extra <= DOC_TOKENS and cost + extra <= left.left(c.rel):
                form, cost = c.lines, cost + extra
        left.take(c.rel, cost)
        seen.update(form)
        label = f"{c.label} (signature)" if form is not c.lines else c.label
        kept.append(_piece(c, form, label))
    missed.sort(key=lambda m: -m[0].score)
    dropped = [
        Dropped(_piece(c, form, c.label), f"needs {cost} tokens, {left.left(c.rel)} left")
        for c, form, cost in missed[:MAX_DROPPED]
    ]
    return Packed(tuple(kept), tuple(dropped), left.used)


def _piece(c: Candidate, form: tuple[int, ...], label: str) -> Piece:
    if form is c.lines:
        texts = c.texts
    else:
        by_line = dict(zip(c.lines, c.texts, strict=True))
        texts = tuple(by_line[n] for n in form)
    return Piece(c.role, c.rel, tuple(n + 1 for n in form), texts, label, c.score, c.reason)
