"""One request's context through the whole stage (`ocaml_ai_ls.context.slicer`: index facts
→ candidates → pack) on the fixture projects, and the narrowing of a huge target."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.context_recall import PROJECTS, Task, evaluate, load_tasks, slice_for, totals
from ocaml_ai_ls.context import slicer
from ocaml_ai_ls.context.index import WorkspaceIndex
from ocaml_ai_ls.context.model import (
    CALLER,
    DEFINITION,
    DUNE,
    FILE,
    INTERFACE,
    MODULE,
    TARGET,
    TYPE,
    Candidate,
    Context,
    Packed,
    estimate_tokens,
)
from ocaml_ai_ls.context.pack import pack
from ocaml_ai_ls.context.slicer import build_context, narrow
from ocaml_ai_ls.documents import DocumentStore
from ocaml_ai_ls.workspace import Workspace


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


def shown(c: Context, rel: str) -> set[int]:
    return {n for p in c.pieces if p.rel == rel for n in p.numbers}


@pytest.fixture
def candidates(monkeypatch: pytest.MonkeyPatch) -> list[list[Candidate]]:
    """The candidates each build_context call hands to pack()."""
    calls: list[list[Candidate]] = []
    real = pack

    def spy(cands: Sequence[Candidate], budget: int, home: str = "") -> Packed:
        calls.append(list(cands))
        return real(cands, budget, home)

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
    first = c.pieces[0]
    assert (first.rank, first.rel, first.numbers) == (TARGET, "lib/shape.ml", tuple(range(55, 63)))
    by = {(p.rank, p.rel, p.label): p for p in c.pieces}
    # the file is small: all of it
    rest = by[(FILE, "lib/shape.ml", "the rest of the file")]
    assert rest.numbers == (*range(1, 55), *range(63, 82))
    # the declaration of the target in the interface, whatever else of it fits
    declares = by[(INTERFACE, "lib/shape.mli", "Shape.translate: function")]
    assert (declares.numbers, declares.reason, declares.score) == (
        (30, 31),
        "declares the target",
        0.95,
    )
    # what the target uses, with its doc comment
    add = by[(DEFINITION, "lib/vec.mli", "`Vec.add`: function add")]
    assert add.texts == ("(** Component-wise sum. *)", "val add : t -> t -> t")
    assert add.reason == "the target uses `Vec.add`"
    # what else the module it uses offers, a reason for each
    offered = {p.label for p in c.pieces if p.rank == MODULE and p.rel == "lib/vec.mli"}
    assert {"Vec.zero: value", "Vec.make: function", "Vec.to_string: function"} <= offered
    assert by[(DUNE, "lib/dune", "library geo (workspace libraries it uses: util)")].texts == (
        "(library",
        " (name geo)",
        " (libraries util))",
    )
    assert by[(CALLER, "lib/scene.ml", "uses `translate`")].numbers == (37,)
    assert c.dropped == ()  # the budget holds everything on offer here
    assert c.budget == 6000 and 0 < c.tokens <= 6000
    assert c.total_lines["lib/shape.ml"] == 81 and c.total_lines["lib/shape.mli"] == 36
    ranks = [p.rank for p in c.pieces]
    assert ranks == sorted(ranks)  # by role, then by score


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
            assert p.reason or p.rank == TARGET, p.label


def test_slice_of_an_interface_item() -> None:
    c = context("wrapped", "lib/vec.mli", 15)  # `val add`
    assert c.target is not None and (c.target.start_line, c.target.end_line) == (14, 15)
    implementation = {p.label: p for p in c.pieces if p.rank == INTERFACE}
    assert implementation["Vec.add: function"].reason == "declares the target"
    assert implementation["Vec.add: function"].rel == "lib/vec.ml"
    assert len(implementation) >= 10  # a small other half: all of it
    callers = {(p.rel, p.numbers) for p in c.pieces if p.rank == CALLER}
    assert ("bin/main.ml", (28, 29)) in callers  # G.Vec.add, through the alias
    assert ("lib/shape.ml", (55, 58)) in callers  # Vec.add inside the library


def test_the_budget_only_decides_what_is_packed(candidates: list[list[Candidate]]) -> None:
    small = context("wrapped", "lib/shape.ml", 55, budget=300)
    small_candidates = candidates[-1]
    big = context("wrapped", "lib/shape.ml", 55, budget=1_000_000)
    assert small_candidates == candidates[-1]
    assert small.pieces[0].rank == TARGET and small.pieces[0].numbers == tuple(range(55, 63))
    assert small.tokens <= 300 and len(small.pieces) < len(big.pieces)
    assert "the rest of the file" in [d.piece.label for d in small.dropped]
    # every piece is a whole candidate, in full or in its brief form, never cut
    forms = {
        (c.rel, tuple(n + 1 for n in form))
        for c in small_candidates
        for form in (c.lines, c.brief)
        if form
    }
    for p in (*small.pieces, *(d.piece for d in small.dropped)):
        assert (p.rel, p.numbers) in forms, p.label
    # the most likely pieces of a small budget are kept at a large one too
    big_shown = {(p.rel, n) for p in big.pieces for n in p.numbers}
    for p in small.pieces:
        assert {(p.rel, n) for n in p.numbers} <= big_shown, p.label


def test_whole_file_when_there_is_no_selection() -> None:
    root = PROJECTS / "wrapped"
    index = index_of("wrapped")
    ws = Workspace(root, DocumentStore())
    current = ws.read(root / "util" / "listx.ml")
    assert current is not None
    c = build_context(ws, current, current.text, None, index=index)
    assert c.target is None
    first = c.pieces[0]
    assert (first.rank, first.numbers, first.label) == (
        TARGET,
        tuple(range(1, 26)),
        "the file being edited",
    )
    assert [p.texts for p in c.pieces if p.rank == DUNE] == [
        ("(library", " (name util)", " (wrapped false))")
    ]


def test_non_ocaml_file_is_shown_alone() -> None:
    root = PROJECTS / "wrapped"
    index = index_of("wrapped")
    ws = Workspace(root, DocumentStore())
    current = ws.read(root / "lib" / "dune")
    assert current is not None
    c = build_context(ws, current, current.text, (0, 0), index=index)
    assert [(p.rank, p.rel, p.numbers, p.label) for p in c.pieces] == [
        (TARGET, "lib/dune", (1, 2, 3), "the file being edited")
    ]


# --------------------------------------------------------------------------- instruction


def test_a_definition_the_instruction_names() -> None:
    c = context("functors", "bin/main.ml", 23, instruction="use IS.of_list")
    named = [p for p in c.pieces if p.reason == "named in the instruction"]
    assert [(p.rank, p.rel, p.numbers, p.texts) for p in named] == [
        (DEFINITION, "lib/kv.mli", (42,), ("  val of_list : (key * 'a) list -> 'a t",))
    ]
    without = context("functors", "bin/main.ml", 23)
    assert not any(p.reason == "named in the instruction" for p in without.pieces)


def test_a_prose_word_of_the_instruction_names_a_member_of_a_used_module() -> None:
    instruction = "return the shape unchanged when the displacement is the zero vector"
    c = context("wrapped", "lib/shape.ml", 55, instruction=instruction)
    zero = [p for p in c.pieces if p.rel == "lib/vec.mli" and 10 in p.numbers]
    assert zero and all("named in the instruction" in p.reason for p in zero)


def test_stopwords_of_the_instruction_name_nothing() -> None:
    plain = context("wrapped", "lib/shape.ml", 55)
    only_stopwords = context("wrapped", "lib/shape.ml", 55, instruction="make the list and add it")
    assert only_stopwords.pieces == plain.pieces


def test_words_of_the_instruction_raise_the_entries_that_share_them() -> None:
    plain = context("wrapped", "lib/shape.ml", 55, budget=700)
    worded = context("wrapped", "lib/shape.ml", 55, budget=700, instruction="use a dot product")
    dot = [p for p in worded.pieces if p.label.startswith("Vec.dot")]
    assert dot and "instruction" in dot[0].reason
    assert not any(p.label.startswith("Vec.dot") for p in plain.pieces)


# --------------------------------------------------------------------------- a huge target


def test_a_huge_item_is_narrowed_to_the_lines_around_the_selection() -> None:
    lines = ["let suite = ["] + [f'  test "case {k}" (fun () -> check {k});' for k in range(600)]
    lines.append("]")
    span = (0, len(lines) - 1)
    lo, hi = narrow(lines, span, (300, 300), 500)
    assert lo < 300 < hi
    assert estimate_tokens(lines[lo : hi + 1]) >= 500 - 20
    assert estimate_tokens(lines[lo : hi + 1]) <= 500 + 20
    assert abs((300 - lo) - (hi - 300)) <= 1  # both ways alike
    assert narrow(lines, (10, 12), (11, 11), 500) == (10, 12)  # small: as it is
    assert narrow(lines, span, (0, 0), 500)[0] == 0  # at the top: grows down only
    lo, hi = narrow(lines, span, (100, 400), 500)
    assert (lo, hi) == (100, 400)  # the selection is kept whole


@given(st.integers(0, 601), st.integers(0, 601), st.integers(1, 3000))
def test_narrowing_stays_in_the_item_and_holds_the_selection(a: int, b: int, limit: int) -> None:
    lines = ["x" * (k % 40) for k in range(602)]
    start, end = 5, 590
    lo, hi = narrow(lines, (start, end), (min(a, b), max(a, b)), limit)
    assert start <= lo <= hi <= end
    inside = (max(start, min(a, b, end)), min(end, max(start, max(a, b))))
    assert lo <= inside[0] and inside[1] <= hi


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


def test_types_the_target_uses_are_shown() -> None:
    c = context("wrapped", "lib/shape.ml", 55)
    types = [p for p in c.pieces if p.rank == TYPE]
    assert any("| Polygon of" in "\n".join(p.texts) for p in types)  # the whole variant
