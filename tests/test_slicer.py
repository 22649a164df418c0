"""What the model is shown: packing, token estimates and slices of the fixture projects
(`ocaml_ai_ls.context.slicer`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.context_recall import PROJECTS, Task, evaluate, load_tasks, slice_for, totals
from ocaml_ai_ls.context import slicer
from ocaml_ai_ls.context.index import WorkspaceIndex
from ocaml_ai_ls.context.slicer import (
    CALLER,
    DEFINITION,
    DUNE,
    FILE,
    INTERFACE,
    TARGET,
    TYPE,
    Context,
    Piece,
    build_context,
    estimate_tokens,
    pack,
)
from ocaml_ai_ls.documents import DocumentStore
from ocaml_ai_ls.workspace import Workspace

# --------------------------------------------------------------------------- pack

#: 13 characters: 20 bytes with the line-number prefix, 5 tokens a line.
LINE = "let x = 1 (*)"


def piece(rank: int, rel: str, numbers: Sequence[int], label: str = "") -> Piece:
    return Piece(rank, rel, tuple(numbers), tuple(LINE for _ in numbers), label or f"{rank}")


def cost(lines: int) -> int:
    return estimate_tokens([LINE] * lines)


def test_line_cost_used_by_the_pack_tests() -> None:
    assert [cost(n) for n in (1, 2, 4, 10)] == [6, 11, 21, 51]


def test_pack_nothing() -> None:
    assert pack([], 100) == ([], [])


def test_pack_is_greedy_by_rank_and_stable_within_a_rank() -> None:
    a = piece(DEFINITION, "a.ml", [1], "a")
    b = piece(FILE, "t.ml", [10], "b")
    c = piece(DEFINITION, "c.ml", [1], "c")
    d = piece(CALLER, "d.ml", [1], "d")
    t = piece(TARGET, "t.ml", [1, 2], "t")
    kept, dropped = pack([d, a, b, c, t], 1000)
    assert [p.label for p in kept] == ["t", "b", "a", "c", "d"]
    assert dropped == []


def test_target_is_kept_even_over_budget() -> None:
    t = piece(TARGET, "t.ml", range(1, 11))
    other = piece(FILE, "t.ml", [20])
    kept, dropped = pack([other, t], 5)
    assert kept == [t]
    assert dropped == [other]


def test_piece_that_does_not_fit_is_dropped_whole_and_a_later_smaller_one_fits() -> None:
    t = piece(TARGET, "t.ml", [1, 2], "t")
    big = piece(FILE, "t.ml", range(10, 20), "big")  # 51 tokens
    small = piece(INTERFACE, "t.mli", [1, 2], "small")  # 11 tokens
    kept, dropped = pack([t, big, small], cost(2) + cost(2) + 5)
    assert kept == [t, small]
    assert dropped == [big]
    assert dropped[0].numbers == tuple(range(10, 20))  # not cut
    assert kept[1].numbers == (1, 2)


def test_lines_of_a_dropped_piece_are_not_counted_as_shown() -> None:
    t = piece(TARGET, "t.ml", [1], "t")
    big = piece(FILE, "t.ml", range(5, 15), "big")
    part = piece(DEFINITION, "t.ml", [5, 6], "part")
    kept, dropped = pack([t, big, part], cost(1) + cost(2))
    assert kept == [t, part]
    assert dropped == [big]


def test_lines_already_shown_are_not_counted_twice() -> None:
    t = piece(TARGET, "a.ml", range(1, 5), "t")  # lines 1-4: 21 tokens
    wider = piece(FILE, "a.ml", range(1, 7), "wider")  # new: 5-6, 11 tokens
    budget = cost(4) + cost(2)
    assert pack([t, wider], budget) == ([t, wider], [])
    assert pack([t, wider], budget - 1) == ([t], [wider])
    # the same line numbers of another file are new
    same_lines = piece(FILE, "b.ml", range(1, 5), "b")
    assert pack([t, same_lines], cost(4) + cost(4)) == ([t, same_lines], [])
    assert pack([t, same_lines], cost(4) + cost(4) - 1) == ([t], [same_lines])


def test_piece_with_nothing_new_is_left_out() -> None:
    t = piece(TARGET, "a.ml", range(1, 5), "t")
    inside = piece(DEFINITION, "a.ml", [2, 3], "inside")
    again = piece(TYPE, "a.ml", range(1, 5), "again")
    kept, dropped = pack([t, inside, again], 0)
    assert kept == [t]
    assert dropped == []  # neither kept nor dropped: omitted
    kept, dropped = pack([t, inside, again], 1000)
    assert kept == [t]


def test_kept_pieces_keep_their_lines_and_texts() -> None:
    t = Piece(TARGET, "a.ml", (3, 4), ("let f x =", "  x + 1"), "`f`")
    d = Piece(DEFINITION, "b.mli", (10,), ("val g : int",), "`g`")
    kept, _ = pack([d, t], 1000)
    assert kept == [t, d]
    assert (kept[1].first_line, kept[1].last_line, kept[1].texts) == (10, 10, ("val g : int",))


# --------------------------------------------------------------------------- estimate_tokens


def test_estimate_tokens_exact_values() -> None:
    assert estimate_tokens([]) == 1
    assert estimate_tokens([""]) == 2  # the prefix alone
    assert estimate_tokens(["abcd"]) == 3
    assert estimate_tokens(["é"]) == 3  # 2 bytes
    assert estimate_tokens(["x" * 100]) == 27
    assert estimate_tokens(["x" * 100] * 10) == 268
    assert estimate_tokens(iter(["abcd", "efgh"])) == estimate_tokens(["abcd", "efgh"]) == 6
    p = Piece(DEFINITION, "a.ml", (1, 2), ("abcd", "efgh"), "")
    assert p.tokens == 6


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.text(max_size=80), max_size=20), extra=st.text(max_size=80))
def test_estimate_tokens_is_stable_and_monotonic(lines: list[str], extra: str) -> None:
    base = estimate_tokens(lines)
    assert estimate_tokens(list(lines)) == base
    assert estimate_tokens(iter(lines)) == base
    assert estimate_tokens([*lines, extra]) >= base  # a line more never costs less
    if lines:
        longer = [*lines[:-1], lines[-1] + extra]  # a longer line never costs less
        assert estimate_tokens(longer) >= base
    assert base >= 1


# --------------------------------------------------------------------------- build_context


@cache
def index_of(project: str) -> WorkspaceIndex:
    index = WorkspaceIndex(PROJECTS / project, DocumentStore())
    index.scan()
    return index


def context(
    project: str, rel: str, line: int, budget: int = 6000, instruction: str = ""
) -> Context:
    return slice_for(Task("t", project, rel, line, instruction, ()), index_of(project), budget)


@cache
def file_lines(project: str, rel: str) -> list[str]:
    return (PROJECTS / project / rel).read_text(encoding="utf-8").splitlines()


def summary(c: Context) -> list[tuple[int, str, int, int, int, str]]:
    return [(p.rank, p.rel, p.first_line, p.last_line, len(p.numbers), p.label) for p in c.pieces]


@pytest.fixture
def candidates(monkeypatch: pytest.MonkeyPatch) -> list[list[Piece]]:
    """The pieces each build_context call hands to pack(), before any is dropped."""
    calls: list[list[Piece]] = []
    real: Callable[[Sequence[Piece], int], tuple[list[Piece], list[Piece]]] = slicer.pack

    def spy(pieces: Sequence[Piece], budget: int) -> tuple[list[Piece], list[Piece]]:
        calls.append(list(pieces))
        return real(pieces, budget)

    monkeypatch.setattr(slicer, "pack", spy)
    return calls


def test_slice_of_an_implementation_item() -> None:
    c = context("wrapped", "lib/shape.ml", 55)  # inside `let translate d s = ...` (55-62)
    assert c.target is not None
    assert (c.target.rel, c.target.start_line, c.target.end_line, c.target.name) == (
        "lib/shape.ml",
        55,
        62,
        "translate",
    )
    assert c.target.text == "\n".join(file_lines("wrapped", "lib/shape.ml")[54:62])
    assert summary(c) == [
        (TARGET, "lib/shape.ml", 55, 62, 8, "`translate`"),
        (FILE, "lib/shape.ml", 1, 81, 73, "the rest of the file"),
        (INTERFACE, "lib/shape.mli", 1, 36, 36, "the interface of this module"),
        (DEFINITION, "lib/vec.mli", 14, 15, 2, "`Vec.add`: function add"),
        (TYPE, "lib/vec.mli", 3, 7, 5, "`t`: type t"),
        (TYPE, "lib/vec.mli", 3, 30, 19, "what module Vec offers"),
        (DUNE, "lib/dune", 1, 3, 3, "library geo (workspace libraries it uses: util)"),
        (CALLER, "lib/scene.ml", 37, 37, 1, "uses `translate`"),
    ]
    target, rest = c.pieces[0], c.pieces[1]
    assert target.numbers == tuple(range(55, 63))
    assert rest.numbers == (*range(1, 55), *range(63, 82))
    assert c.pieces[3].texts == ("(** Component-wise sum. *)", "val add : t -> t -> t")
    assert c.pieces[6].texts == ("(library", " (name geo)", " (libraries util))")
    assert c.pieces[7].texts == (
        "let translate_all d scene = { scene with shapes = List.map (Shape.translate d) scene.shapes }",
    )
    assert c.dropped == ()
    assert c.budget == 6000
    assert c.files == (
        "lib/shape.ml",
        "lib/shape.mli",
        "lib/vec.mli",
        "lib/dune",
        "lib/scene.ml",
    )
    assert c.total_lines == {
        "lib/shape.ml": 81,
        "lib/shape.mli": 36,
        "lib/vec.mli": 30,
        "lib/dune": 3,
        "lib/scene.ml": 37,
    }


def test_every_piece_shows_its_files_lines() -> None:
    for project, rel, line in [
        ("wrapped", "lib/shape.ml", 55),
        ("wrapped", "bin/main.ml", 29),
        ("functors", "bin/main.ml", 23),
        ("opens", "bin/app.ml", 19),
    ]:
        c = context(project, rel, line)
        for p in c.pieces:
            lines = file_lines(project, p.rel)
            assert p.texts == tuple(lines[n - 1] for n in p.numbers), (rel, p.label)
            assert list(p.numbers) == sorted(set(p.numbers))


def test_slice_of_an_interface_item() -> None:
    c = context("wrapped", "lib/vec.mli", 15)  # `val add`
    assert c.target is not None and (c.target.start_line, c.target.end_line) == (14, 15)
    assert [(p.rank, p.rel, p.label) for p in c.pieces[:3]] == [
        (TARGET, "lib/vec.mli", "`add`"),
        (FILE, "lib/vec.mli", "the rest of the file"),
        (INTERFACE, "lib/vec.ml", "the implementation of this module"),
    ]
    callers = {(p.rel, p.numbers) for p in c.pieces if p.rank == CALLER}
    assert ("bin/main.ml", (28, 29)) in callers  # G.Vec.add, through the alias
    assert ("lib/shape.ml", (55, 58)) in callers  # Vec.add inside the library


def test_tiny_budget_keeps_the_target_and_drops_whole_pieces(
    candidates: list[list[Piece]],
) -> None:
    small = context("wrapped", "lib/shape.ml", 55, budget=300)
    small_candidates = candidates[-1]
    big = context("wrapped", "lib/shape.ml", 55, budget=1_000_000)
    big_candidates = candidates[-1]
    assert small_candidates == big_candidates  # the budget only decides what is packed

    assert small.pieces[0].rank == TARGET
    assert small.pieces[0].numbers == tuple(range(55, 63))
    assert [(p.rank, p.rel, p.label) for p in small.dropped] == [
        (FILE, "lib/shape.ml", "the rest of the file"),
        (INTERFACE, "lib/shape.mli", "the interface of this module"),
        (CALLER, "lib/scene.ml", "uses `translate`"),
    ]
    assert [p.rank for p in small.pieces] == sorted(p.rank for p in small.pieces)
    assert (DEFINITION, "lib/vec.mli", (14, 15)) in [
        (p.rank, p.rel, p.numbers) for p in small.pieces
    ]
    assert (DUNE, "lib/dune", (1, 2, 3)) in [(p.rank, p.rel, p.numbers) for p in small.pieces]
    # every piece kept or dropped is a candidate as it was made: none was cut
    for p in (*small.pieces, *small.dropped):
        assert p in small_candidates, p.label
    # what pack counted (lines shown once) fits the budget, apart from the target
    shown: dict[str, set[int]] = {}
    used = 0
    for p in small.pieces:
        seen = shown.setdefault(p.rel, set())
        new = [t for n, t in zip(p.numbers, p.texts, strict=True) if n not in seen]
        assert new, p.label  # a piece with nothing new is not kept
        if p.rank != TARGET:
            used += estimate_tokens(new)
        seen.update(p.numbers)
    assert used + small.pieces[0].tokens <= 300
    # a kept piece is what it would have been at a large budget, where it is either
    # kept as it is or left out because earlier pieces show all of its lines
    big_shown = {(p.rel, n) for p in big.pieces for n in p.numbers}
    for p in small.pieces[1:]:
        assert p in big.pieces or {(p.rel, n) for n in p.numbers} <= big_shown, p.label


def test_context_tokens_match_what_pack_counted() -> None:
    c = context("wrapped", "lib/shape.ml", 55, budget=300)
    assert c.pieces[0].tokens <= 300  # the target alone fits
    assert c.tokens <= c.budget


def test_whole_file_when_there_is_no_selection() -> None:
    root = PROJECTS / "wrapped"
    index = index_of("wrapped")
    ws = Workspace(root, DocumentStore(), index)
    current = ws.read(root / "util" / "listx.ml")
    assert current is not None
    c = build_context(ws, current, current.text, None, index=index)
    assert c.target is None
    assert summary(c)[0] == (TARGET, "util/listx.ml", 1, 25, 25, "the file being edited")
    assert [p.rank for p in c.pieces] == [TARGET, DUNE]
    assert c.pieces[1].texts == ("(library", " (name util)", " (wrapped false))")


def test_non_ocaml_file_is_shown_alone() -> None:
    root = PROJECTS / "wrapped"
    index = index_of("wrapped")
    ws = Workspace(root, DocumentStore(), index)
    current = ws.read(root / "lib" / "dune")
    assert current is not None
    c = build_context(ws, current, current.text, (0, 0), index=index)
    assert summary(c) == [(TARGET, "lib/dune", 1, 3, 3, "the file being edited")]


# --------------------------------------------------------------------------- instruction


def test_definition_named_in_the_instruction() -> None:
    c = context("functors", "bin/main.ml", 23, instruction="use IS.of_list")
    named = [p for p in c.pieces if "named in the instruction" in p.label]
    assert [(p.rank, p.rel, p.numbers, p.texts, p.label) for p in named] == [
        (
            DEFINITION,
            "lib/kv.mli",
            (42,),
            ("  val of_list : (key * 'a) list -> 'a t",),
            "`IS.of_list`: function of_list (named in the instruction)",
        )
    ]
    without = context("functors", "bin/main.ml", 23)
    assert [p for p in without.pieces if "named in the instruction" in p.label] == []
    assert not any(
        p.rank == DEFINITION and p.rel == "lib/kv.mli" and 42 in p.numbers for p in without.pieces
    )
    # the rest of the slice does not change
    assert [p for p in c.pieces if p not in named] == list(without.pieces)


def test_prose_word_of_the_instruction_names_a_member_of_a_used_module() -> None:
    c = context(
        "wrapped",
        "lib/shape.ml",
        55,
        instruction="return the shape unchanged when the displacement is the zero vector",
    )
    named = [(p.rank, p.rel, p.numbers, p.label) for p in c.pieces if "instruction" in p.label]
    assert named == [
        (DEFINITION, "lib/vec.mli", (9, 10), "`zero`: value zero (named in the instruction)")
    ]


def test_stopwords_of_the_instruction_name_nothing() -> None:
    plain = context("wrapped", "lib/shape.ml", 55)
    # `make` (Vec.make) and `return` are stopwords; `length` is Vec.length
    worded = context("wrapped", "lib/shape.ml", 55, instruction="make it return the length")
    named = [(p.rank, p.rel, p.numbers, p.label) for p in worded.pieces if "instruction" in p.label]
    assert named == [
        (
            DEFINITION,
            "lib/vec.mli",
            (24, 25),
            "`length`: function length (named in the instruction)",
        )
    ]
    assert [p for p in worded.pieces if p not in plain.pieces] == [
        p for p in worded.pieces if "instruction" in p.label
    ]
    only_stopwords = context("wrapped", "lib/shape.ml", 55, instruction="make the list and add it")
    assert only_stopwords.pieces == plain.pieces


# --------------------------------------------------------------------------- quality


def test_context_recall_on_the_fixture_tasks() -> None:
    outcomes = evaluate()  # the default budget, 6000 tokens
    assert len(outcomes) == len(load_tasks())
    recall, precision = totals(outcomes)
    missed = [f"{o.task.id}: {n.text}" for o in outcomes for n in o.missed]
    assert recall >= 0.95, missed
    assert 0.0 < precision <= 1.0
    projects = sorted({o.task.project for o in outcomes})
    assert projects == ["functors", "opens", "wrapped"]
    for project in projects:
        recall, _ = totals([o for o in outcomes if o.task.project == project])
        assert recall >= 0.95, project
