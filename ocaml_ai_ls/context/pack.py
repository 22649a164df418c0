"""Packing: the best candidates that fit the token budget, as pieces of the prompt.

The target is always kept. The others go by score, best first: a candidate
likely enough to be needed (`FULL_SCORE`) is shown whole (a definition with
its doc comment), a less likely one by its brief form (the bare signature),
so many far entries fit where a few documented ones would. A candidate is
never cut: what does not fit is dropped whole, and packing goes on with the
next, smaller ones. A line already shown costs nothing again; a candidate
with nothing new is left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from .model import FILE_TOKENS, GAP_TOKENS, TARGET, Candidate, Dropped, Piece, estimate_tokens

#: From this score on a candidate is shown in full (with its doc comment).
FULL_SCORE = 0.5
#: The share of the budget that files other than the one being edited may take.
OTHER_FILES_SHARE = 0.6
#: Dropped candidates reported, at most (the best of them).
MAX_DROPPED = 40


def _order(candidate: Candidate) -> tuple[bool, float, int]:
    return (candidate.role != TARGET, -candidate.score, candidate.role)


def pack(
    candidates: Sequence[Candidate], budget: int, home: str = ""
) -> tuple[list[Piece], list[Dropped]]:
    """Pieces in the order they were taken, and the best of what did not fit.

    Files other than `home` (the file being edited) share at most
    `OTHER_FILES_SHARE` of the budget, so the file being edited keeps room for
    its own definitions however much the rest of the project offers.
    """
    shown: dict[str, set[int]] = {}
    files: set[str] = set()
    kept: list[Piece] = []
    dropped: list[Dropped] = []
    used = 0
    used_elsewhere = 0
    elsewhere = int(budget * OTHER_FILES_SHARE)
    for c in sorted(candidates, key=_order):  # stable: equal scores keep their order
        seen = shown.setdefault(c.rel, set())
        forms = [c.lines] if c.score >= FULL_SCORE or not c.brief else [c.brief]
        if c.brief and forms[0] is c.lines and c.brief != c.lines:
            forms.append(c.brief)  # in full if it fits, else briefly
        texts = dict(zip(c.lines, c.texts, strict=True))
        taken = False
        cost = 0
        for form in forms:
            new = [n for n in form if n not in seen]
            if not new:
                taken = True  # everything is shown already
                break
            cost = estimate_tokens(texts[n] for n in new) + GAP_TOKENS
            cost += FILE_TOKENS if c.rel not in files else 0
            away = c.rel != home
            if c.role == TARGET or (
                used + cost <= budget and (not away or used_elsewhere + cost <= elsewhere)
            ):
                used += cost
                used_elsewhere += cost if away else 0
                files.add(c.rel)
                seen.update(new)
                brief = form is not c.lines
                label = f"{c.label} (signature)" if brief else c.label
                kept.append(
                    Piece(
                        c.role,
                        c.rel,
                        tuple(n + 1 for n in form),
                        tuple(texts[n] for n in form),
                        label,
                        c.score,
                        c.reason,
                    )
                )
                taken = True
                break
        if not taken and len(dropped) < MAX_DROPPED:
            form = forms[-1]
            piece = Piece(
                c.role,
                c.rel,
                tuple(n + 1 for n in form),
                tuple(texts[n] for n in form),
                c.label,
                c.score,
                c.reason,
            )
            left = (
                min(budget - used, elsewhere - used_elsewhere) if c.rel != home else budget - used
            )
            dropped.append(Dropped(piece, f"needs {cost} tokens, {left} left"))
    return kept, dropped
