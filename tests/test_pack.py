"""Packing candidates into the budget (`ocaml_ai_ls.context.pack`), on hand-built candidates."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from ocaml_ai_ls.context import pack as packing
from ocaml_ai_ls.context.model import (
    CALLER,
    DEFINITION,
    DUNE,
    FILE,
    FILE_TOKENS,
    GAP_TOKENS,
    MODULE,
    TARGET,
    Candidate,
    Dropped,
    Piece,
    estimate_tokens,
)
from ocaml_ai_ls.context.pack import DOC_TOKENS, FULL_SCORE, OTHER_FILES_SHARE

#: 13 characters: 20 bytes with the line-number prefix, 5 tokens a line.
LINE = "let x = 1 (*)"


def cand(
    role: int,
    rel: str,
    lines: Sequence[int],
    score: float,
    label: str = "",
    brief: Sequence[int] = (),
    text: str = LINE,
) -> Candidate:
    """Lines are 0-based, as candidates hold them."""
    return Candidate(
        role,
        rel,
        tuple(lines),
        tuple(text for _ in lines),
        score,
        f"why {label}",
        label or f"{rel}:{lines[0]}",
        tuple(brief),
    )


def cost(lines: int, first_of_file: bool = True) -> int:
    """What pack charges for `lines` new lines of LINE."""
    return estimate_tokens([LINE] * lines) + GAP_TOKENS + (FILE_TOKENS if first_of_file else 0)


def pack(
    candidates: Sequence[Candidate], budget: int, home: str = ""
) -> tuple[list[Piece], list[Dropped]]:
    packed = packing.pack(candidates, budget, home)
    return list(packed.pieces), list(packed.dropped)


def labels(pieces: Iterable[Piece]) -> list[str]:
    return [p.label for p in pieces]


def test_the_costs_used_here() -> None:
    assert [estimate_tokens([LINE] * n) for n in (1, 2, 4)] == [6, 11, 21]
    assert cost(1) == 6 + GAP_TOKENS + FILE_TOKENS
    assert cand(FILE, "a.ml", [0, 1], 0.5).cost == 11 + GAP_TOKENS
    assert cand(FILE, "a.ml", [0, 1, 2, 3], 0.5, brief=[1]).cost == 6 + GAP_TOKENS
    assert cand(FILE, "a.ml", [0, 1, 2, 3], 0.5, brief=[1]).full_cost == 21 + GAP_TOKENS


def test_nothing_to_pack() -> None:
    assert packing.pack([], 100).pieces == ()
    assert packing.pack([], 100).tokens == 0


def test_the_target_is_kept_over_budget_and_first() -> None:
    target = cand(TARGET, "t.ml", range(10), 1.0, "t")
    other = cand(FILE, "t.ml", [20], 0.9, "rest")
    kept, dropped = pack([other, target], 5, home="t.ml")
    assert labels(kept) == ["t"]
    assert labels(d.piece for d in dropped) == ["rest"]
    assert dropped[0].why.startswith(f"needs {cost(1, first_of_file=False)} tokens")


def test_candidates_go_by_score_per_token() -> None:
    target = cand(TARGET, "t.ml", [0], 1.0, "t")
    # one long, likely piece against three short ones, each less likely but worth more per token
    long = cand(DUNE, "dune", range(10), 0.5, "long")
    short = [cand(MODULE, f"m{k}.mli", [0], 0.2, f"short{k}") for k in range(3)]
    budget = int(3 * cost(1) / OTHER_FILES_SHARE) + 1  # room elsewhere for the three only
    kept, dropped = pack([target, long, *short], budget, home="t.ml")
    assert labels(kept) == ["t", "short0", "short1", "short2"]
    assert labels(d.piece for d in dropped) == ["long"]


def test_equal_value_keeps_the_order_given() -> None:
    target = cand(TARGET, "t.ml", [0], 1.0, "t")
    same = [cand(DEFINITION, "a.mli", [k], 0.3, f"d{k}") for k in range(4)]
    kept, _ = pack([target, *same], 10_000, home="t.ml")
    assert labels(kept) == ["t", "d0", "d1", "d2", "d3"]


def test_a_candidate_that_does_not_fit_is_dropped_whole_and_a_smaller_one_goes_on() -> None:
    target = cand(TARGET, "t.ml", [0], 1.0, "t")
    big = cand(FILE, "t.ml", range(10, 20), 0.9, "big")
    small = cand(FILE, "t.ml", [30], 0.1, "small")
    budget = cost(1) + cost(1, first_of_file=False)
    kept, dropped = pack([target, big, small], budget, home="t.ml")
    assert labels(kept) == ["t", "small"]
    assert [d.piece.numbers for d in dropped] == [tuple(range(11, 21))]  # 1-based, not cut


def test_lines_already_shown_cost_nothing_again() -> None:
    target = cand(TARGET, "a.ml", range(4), 1.0, "t")
    wider = cand(FILE, "a.ml", range(6), 0.5, "wider")  # two new lines
    budget = cost(4) + cost(2, first_of_file=False)
    assert labels(pack([target, wider], budget, home="a.ml")[0]) == ["t", "wider"]
    assert labels(pack([target, wider], budget - 1, home="a.ml")[0]) == ["t"]
    inside = cand(DEFINITION, "a.ml", [1, 2], 0.9, "inside")
    kept, dropped = pack([target, inside], 0, home="a.ml")
    assert (labels(kept), dropped) == (["t"], [])  # nothing new: neither kept nor dropped


def test_the_same_line_numbers_of_another_file_are_new() -> None:
    target = cand(TARGET, "a.ml", range(4), 1.0, "t")
    other = cand(FILE, "b.ml", range(4), 0.5, "b")
    budget = 10 * cost(4)
    kept, _ = pack([target, other], budget, home="a.ml")
    assert [p.numbers for p in kept] == [(1, 2, 3, 4), (1, 2, 3, 4)]


def test_a_likely_candidate_is_shown_whole_a_less_likely_one_briefly() -> None:
    target = cand(TARGET, "t.ml", [0], 1.0, "t")
    doc = [0, 1, 2, 3]  # a doc comment and a signature on line 3
    likely = cand(DEFINITION, "a.mli", doc, FULL_SCORE, "likely", brief=[3])
    unlikely = cand(MODULE, "b.mli", doc, FULL_SCORE / 2, "unlikely", brief=[3])
    kept, _ = pack([target, likely, unlikely], 10_000, home="t.ml")
    assert [(p.label, p.numbers) for p in kept] == [
        ("t", (1,)),
        ("likely", (1, 2, 3, 4)),
        ("unlikely (signature)", (4,)),
    ]


def test_a_long_doc_comment_is_left_out_even_when_likely() -> None:
    target = cand(TARGET, "t.ml", [0], 1.0, "t")
    doc_lines = DOC_TOKENS  # each line costs 5 tokens: far more than DOC_TOKENS
    long = cand(DEFINITION, "a.mli", range(doc_lines + 1), 0.9, "long", brief=[doc_lines])
    kept, _ = pack([target, long], 100_000, home="t.ml")
    assert [(p.label, p.numbers) for p in kept] == [("t", (1,)), ("long (signature)", (81,))]


def test_the_brief_form_when_the_whole_does_not_fit() -> None:
    target = cand(TARGET, "t.ml", [0], 1.0, "t")
    c = cand(DEFINITION, "a.mli", [0, 1, 2, 3], 0.9, "c", brief=[3])
    kept, _ = pack([target, c], cost(1) + cost(1), home="t.ml")
    assert [(p.label, p.numbers) for p in kept] == [("t", (1,)), ("c (signature)", (4,))]


def test_other_files_share_at_most_their_part_of_the_budget() -> None:
    budget = 1000
    elsewhere = int(budget * OTHER_FILES_SHARE)
    target = cand(TARGET, "t.ml", [0], 1.0, "t")
    others = [cand(MODULE, f"m{k}.mli", [0], 0.5, f"m{k}") for k in range(100)]
    home = [cand(FILE, "t.ml", [k], 0.01, f"h{k}") for k in range(1, 100)]
    kept, _ = pack([target, *others, *home], budget, home="t.ml")
    away = [p for p in kept if p.rel != "t.ml"]
    assert len(away) == elsewhere // cost(1)  # each in a file of its own
    assert any(p.label.startswith("h") for p in kept)  # the file being edited still gets room


def test_a_piece_keeps_its_lines_texts_score_and_reason() -> None:
    target = Candidate(TARGET, "a.ml", (2, 3), ("let f x =", "  x + 1"), 1.0, "", "`f`")
    d = Candidate(DEFINITION, "b.mli", (9,), ("val g : int",), 0.9, "the target uses `g`", "`g`")
    kept, _ = pack([d, target], 1000, home="a.ml")
    assert kept == [
        Piece(TARGET, "a.ml", (3, 4), ("let f x =", "  x + 1"), "`f`", 1.0, ""),
        Piece(DEFINITION, "b.mli", (10,), ("val g : int",), "`g`", 0.9, "the target uses `g`"),
    ]


def test_the_best_dropped_are_reported_by_score() -> None:
    target = cand(TARGET, "t.ml", [0], 1.0, "t")
    others = [cand(CALLER, f"c{k}.ml", range(50), k / 100, f"c{k}") for k in range(60)]
    _, dropped = pack([target, *others], cost(1), home="t.ml")
    assert labels(d.piece for d in dropped)[:3] == ["c59", "c58", "c57"]
    assert len(dropped) == 40


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a.ml", "b.mli", "c.ml"]),
            st.lists(st.integers(0, 30), min_size=1, max_size=6, unique=True),
            st.floats(0.0, 1.0),
        ),
        max_size=25,
    ),
    st.integers(0, 400),
)
def test_what_is_kept_fits_and_is_never_cut(
    raw: list[tuple[str, list[int], float]], budget: int
) -> None:
    target = cand(TARGET, "a.ml", [40, 41], 1.0, "t")
    cands = [cand(FILE, rel, sorted(lines), score) for rel, lines, score in raw]
    packed = packing.pack([target, *cands], budget, home="a.ml")
    kept, dropped = packed.pieces, packed.dropped
    assert kept[0].label == "t"
    shown: dict[str, set[int]] = {}
    used = 0
    for p in kept:
        seen = shown.setdefault(p.rel, set())
        new = [t for n, t in zip(p.numbers, p.texts, strict=True) if n not in seen]
        assert new  # nothing is kept for nothing
        used += estimate_tokens(new) + GAP_TOKENS + (0 if seen else FILE_TOKENS)
        seen.update(p.numbers)
        made = {(c.rel, tuple(n + 1 for n in c.lines)) for c in (target, *cands)}
        assert (p.rel, p.numbers) in made  # a whole candidate, never part of one
    assert used == packed.tokens  # what pack says it spent is what its pieces cost
    assert used - (estimate_tokens([LINE] * 2) + GAP_TOKENS + FILE_TOKENS) <= budget
    assert len(dropped) <= 40
