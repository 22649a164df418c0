"""The miner over hand-built timelines (no git): episodes, diffs, errors, limits,
UNKNOWN states, near-duplicates, the split, the JSON shape, the context, and the
cleaning of instructions."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from ocaml_ai_ls.snapshots.describe import clean_instruction
from ocaml_ai_ls.snapshots.miner import (
    EDIT,
    REPAIR,
    Dedup,
    Example,
    MemoryTimeline,
    MineOptions,
    collect,
    diff_trees,
    is_heldout,
    mine,
    steps,
    write_jsonl,
)
from ocaml_ai_ls.snapshots.store import GREEN, RED, UNKNOWN, BuildState, Snapshot
from ocaml_ai_ls.verify.result import CheckError

# -- the scripted session (shared with test_mine_cli) --------------------------------

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "shapes"
FILES = {
    rel: (EXAMPLE / rel).read_bytes()
    for rel in ("dune-project", "lib/dune", "lib/shapes.ml", "lib/shapes.mli", "bin/dune")
} | {"bin/main.ml": (EXAMPLE / "bin/main.ml").read_bytes()}

State = tuple[str, Mapping[str, bytes], tuple[CheckError, ...]]


def changed(files: Mapping[str, bytes], rel: str, old: str, new: str) -> dict[str, bytes]:
    """`files` with `old` (there exactly once) replaced by `new` in `rel`."""
    text = files[rel].decode()
    assert text.count(old) == 1, (rel, old)
    return {**files, rel: text.replace(old, new).encode()}


GREEN0 = FILES
RED1 = changed(GREEN0, "lib/shapes.ml", "| Rect (w, h) -> w *. h\n", "| Rect (w, h) -> w * h\n")
TYPE_ERROR = CheckError(
    "lib/shapes.ml",
    9,
    19,
    "This expression has type float but an expression was expected of type int",
    9,
    20,
)
GREEN2 = changed(
    RED1, "lib/shapes.ml", "| Rect (w, h) -> w * h\n", "| Rect (w, h) -> abs_float (w *. h)\n"
)
#: An unrelated big refactor: `describe` renamed everywhere, and a 120-line module.
GREEN3 = {
    **changed(
        changed(
            changed(GREEN2, "lib/shapes.ml", "let describe shape", "let to_string shape"),
            "lib/shapes.mli",
            "val describe : t -> string",
            "val to_string : t -> string",
        ),
        "bin/main.ml",
        "Shapes.describe s",
        "Shapes.to_string s",
    ),
    "lib/helpers.ml": "".join(f"let helper_{i} x = x + {i}\n" for i in range(120)).encode(),
}
RED4 = changed(
    GREEN3,
    "bin/main.ml",
    "print_endline (Shapes.to_string s))\n",
    "print_endline (Shapes.to_string s));\n  print_float (Shapes.volume (Shapes.Circle 1.0))\n",
)
UNBOUND = CheckError("bin/main.ml", 4, 15, "Unbound value Shapes.volume", 4, 28)
GREEN5 = changed(
    changed(
        RED4,
        "lib/shapes.ml",
        "let perimeter = function",
        "let volume = function\n  | Circle r -> 4.0 /. 3.0 *. pi *. r *. r *. r\n"
        "  | Rect _ -> 0.0\n\nlet perimeter = function",
    ),
    "lib/shapes.mli",
    "val perimeter : t -> float",
    "val volume : t -> float\n\nval perimeter : t -> float",
)
SESSION: list[State] = [
    (GREEN, GREEN0, ()),
    (RED, RED1, (TYPE_ERROR,)),
    (GREEN, GREEN2, ()),
    (GREEN, GREEN3, ()),
    (RED, RED4, (UNBOUND,)),
    (GREEN, GREEN5, ()),
]
#: 2024-05-01T12:00:00Z; each next state a minute later.
T0 = 1_714_564_800.0

EDIT1_DIFF = """\
--- a/lib/shapes.ml
+++ b/lib/shapes.ml
@@ -6,7 +6,7 @@
\x20
 let area = function
   | Circle r -> pi *. r *. r
-  | Rect (w, h) -> w *. h
+  | Rect (w, h) -> abs_float (w *. h)
\x20
 let perimeter = function
   | Circle r -> 2.0 *. pi *. r
"""
REPAIR1_DIFF = EDIT1_DIFF.replace("-  | Rect (w, h) -> w *. h", "-  | Rect (w, h) -> w * h")
EDIT2_DIFF = """\
--- a/bin/main.ml
+++ b/bin/main.ml
@@ -1,3 +1,4 @@
 let () =
   [ Shapes.Circle 1.0; Shapes.Rect (2.0, 3.0) ]
-  |> List.iter (fun s -> print_endline (Shapes.to_string s))
+  |> List.iter (fun s -> print_endline (Shapes.to_string s));
+  print_float (Shapes.volume (Shapes.Circle 1.0))
--- a/lib/shapes.ml
+++ b/lib/shapes.ml
@@ -7,6 +7,10 @@
 let area = function
   | Circle r -> pi *. r *. r
   | Rect (w, h) -> abs_float (w *. h)
+
+let volume = function
+  | Circle r -> 4.0 /. 3.0 *. pi *. r *. r *. r
+  | Rect _ -> 0.0
\x20
 let perimeter = function
   | Circle r -> 2.0 *. pi *. r
--- a/lib/shapes.mli
+++ b/lib/shapes.mli
@@ -7,6 +7,8 @@
 val area : t -> float
 (** The area of a shape. *)
\x20
+val volume : t -> float
+
 val perimeter : t -> float
 (** The length of a shape's boundary. *)
\x20
"""
REPAIR2_DIFF = EDIT2_DIFF[EDIT2_DIFF.index("--- a/lib/shapes.ml") :]


def snap(i: int, status: str, errors: Sequence[CheckError] = (), sid: str = "") -> Snapshot:
    return Snapshot(sid or f"s{i}", T0 + 60 * i, BuildState(status, tuple(errors)), ())


def timeline(states: Sequence[State]) -> MemoryTimeline:
    return MemoryTimeline(
        (snap(i, status, errors), files) for i, (status, files, errors) in enumerate(states)
    )


NO_CONTEXT = MineOptions(context=None)


def by_kind(examples: Sequence[Example]) -> list[tuple[str, str]]:
    return [(e.kind, e.episode) for e in examples]


# -- episodes -------------------------------------------------------------------


def test_scripted_session_gives_two_edits_and_two_repairs() -> None:
    examples, report = collect(timeline(SESSION), NO_CONTEXT)
    assert by_kind(examples) == [(EDIT, "s0"), (REPAIR, "s0"), (EDIT, "s3"), (REPAIR, "s3")]
    edit1, repair1, edit2, repair2 = examples
    assert edit1.diff == EDIT1_DIFF
    assert edit1.files_before == {"lib/shapes.ml": GREEN0["lib/shapes.ml"].decode()}
    assert edit1.errors == []
    assert edit1.time == "2024-05-01T12:02:00Z"
    assert repair1.diff == REPAIR1_DIFF
    assert repair1.files_before == {"lib/shapes.ml": RED1["lib/shapes.ml"].decode()}
    assert repair1.errors == [asdict(TYPE_ERROR)]
    assert repair1.errors[0]["message"].startswith("This expression has type float")
    assert repair1.time == "2024-05-01T12:02:00Z"
    assert edit2.diff == EDIT2_DIFF
    assert sorted(edit2.files_before) == ["bin/main.ml", "lib/shapes.ml", "lib/shapes.mli"]
    assert edit2.files_before["bin/main.ml"] == GREEN3["bin/main.ml"].decode()
    assert repair2.diff == REPAIR2_DIFF
    assert repair2.errors == [asdict(UNBOUND)]
    assert repair2.time == edit2.time == "2024-05-01T12:05:00Z"
    assert report.found == {EDIT: 2, REPAIR: 2}
    assert report.kept == {EDIT: 2, REPAIR: 2}
    assert (report.empty, report.too_big, report.duplicates) == (0, 0, 0)


def test_green_to_green_is_no_episode() -> None:
    states: list[State] = [(GREEN, GREEN0, ()), (GREEN, GREEN2, ()), (GREEN, GREEN3, ())]
    assert steps(timeline(states).log()) == []


def test_an_edit_that_reverts_itself_is_dropped_but_its_repair_kept() -> None:
    states: list[State] = [(GREEN, GREEN0, ()), (RED, RED1, (TYPE_ERROR,)), (GREEN, GREEN0, ())]
    examples, report = collect(timeline(states), NO_CONTEXT)
    assert by_kind(examples) == [(REPAIR, "s0")]
    assert report.empty == 1


def test_several_reds_give_one_edit_and_one_repair_from_the_last_red() -> None:
    red_again = changed(RED1, "lib/shapes.ml", "pi *. r *. r\n", "pi *. r *. r *. 1.0\n")
    states: list[State] = [
        (GREEN, GREEN0, ()),
        (RED, RED1, (TYPE_ERROR,)),
        (RED, red_again, (TYPE_ERROR,)),
        (GREEN, GREEN2, ()),
    ]
    tl = timeline(states)
    assert [(s.kind, s.before.id, s.after.id) for s in steps(tl.log())] == [
        (EDIT, "s0", "s3"),
        (REPAIR, "s2", "s3"),
    ]
    examples, _ = collect(tl, NO_CONTEXT)
    assert examples[0].diff == EDIT1_DIFF  # the net change: first green to last green
    assert "-  | Circle r -> pi *. r *. r *. 1.0\n" in examples[1].diff


def test_a_red_start_gives_a_standalone_repair() -> None:
    states: list[State] = [(RED, RED1, (TYPE_ERROR,)), (GREEN, GREEN2, ())]
    examples, _ = collect(timeline(states), NO_CONTEXT)
    assert by_kind(examples) == [(REPAIR, "s0")]
    assert examples[0].diff == REPAIR1_DIFF


def test_unknown_states_neither_open_close_nor_break_an_episode() -> None:
    states: list[State] = [
        (GREEN, GREEN0, ()),
        (UNKNOWN, RED1, ()),  # not known: no repair from here
        (RED, RED1 | {"lib/extra.ml": b"let x = 1\n"}, (TYPE_ERROR,)),
        (UNKNOWN, GREEN2, ()),
        (GREEN, GREEN2 | {"lib/extra.ml": b"let x = 1\n"}, ()),
        (UNKNOWN, GREEN3, ()),
        (RED, RED4, (UNBOUND,)),  # the GREEN before it is s4, through the UNKNOWN s5
        (GREEN, GREEN5, ()),
    ]
    tl = timeline(states)
    assert [(s.kind, s.episode, s.before.id, s.after.id) for s in steps(tl.log())] == [
        (EDIT, "s0", "s0", "s4"),
        (REPAIR, "s0", "s2", "s4"),
        (EDIT, "s4", "s4", "s7"),
        (REPAIR, "s4", "s6", "s7"),
    ]
    examples, report = collect(tl, NO_CONTEXT)
    assert examples[0].diff == (
        "--- /dev/null\n+++ b/lib/extra.ml\n@@ -0,0 +1 @@\n+let x = 1\n" + EDIT1_DIFF
    )
    assert examples[0].files_before.keys() == {"lib/shapes.ml"}  # a created file is absent
    assert examples[1].diff == REPAIR1_DIFF  # the repair spans the UNKNOWN state
    # s4 → s7 includes the big refactor made during the UNKNOWN stretch: too big
    assert by_kind(examples) == [(EDIT, "s0"), (REPAIR, "s0"), (REPAIR, "s4")]
    assert report.too_big == 1
    assert steps(timeline([(UNKNOWN, GREEN0, ()), (UNKNOWN, RED1, ())]).log()) == []


# -- limits ---------------------------------------------------------------------


def test_size_limits_count_files_and_added_plus_removed_lines() -> None:
    tl = timeline(SESSION)
    # edit 2 changes 3 files and 9 lines; repair 2 changes 2 files and 6 lines
    examples, report = collect(tl, replace(NO_CONTEXT, max_files=2))
    assert by_kind(examples) == [(EDIT, "s0"), (REPAIR, "s0"), (REPAIR, "s3")]
    assert report.too_big == 1
    examples, _ = collect(tl, replace(NO_CONTEXT, max_changed_lines=6))
    assert by_kind(examples) == [(EDIT, "s0"), (REPAIR, "s0"), (REPAIR, "s3")]
    examples, _ = collect(tl, replace(NO_CONTEXT, max_changed_lines=5))
    assert by_kind(examples) == [(EDIT, "s0"), (REPAIR, "s0")]
    examples, _ = collect(tl, replace(NO_CONTEXT, max_changed_lines=1))
    assert examples == []


def test_files_that_are_not_text_are_dropped() -> None:
    states: list[State] = [
        (GREEN, GREEN0, ()),
        (RED, GREEN0 | {"lib/blob.ml": b"\xff\xfe"}, (TYPE_ERROR,)),
        (GREEN, GREEN0 | {"lib/blob.ml": b"\xff\xfd"}, ()),
    ]
    examples, report = collect(timeline(states), NO_CONTEXT)
    assert examples == [] and report.not_text == 2


def test_diff_of_created_deleted_and_unterminated_files() -> None:
    before = {"a.ml": b"let a = 1\n", "b.ml": b"let b = 2"}
    after = {"b.ml": b"let b = 3", "c.ml": b"let c = 3\n"}
    change = diff_trees(before, after, ["a.ml", "b.ml", "c.ml"])
    assert change is not None
    assert change.diff == (
        "--- a/a.ml\n+++ /dev/null\n@@ -1 +0,0 @@\n-let a = 1\n"
        "--- a/b.ml\n+++ b/b.ml\n@@ -1 +1 @@\n"
        "-let b = 2\n\\ No newline at end of file\n+let b = 3\n\\ No newline at end of file\n"
        "--- /dev/null\n+++ b/c.ml\n@@ -0,0 +1 @@\n+let c = 3\n"
    )
    assert change.changed_lines == 4
    assert change.files_before == {"a.ml": "let a = 1\n", "b.ml": "let b = 2"}
    assert change.files_after == {"a.ml": None, "b.ml": "let b = 3", "c.ml": "let c = 3\n"}


# -- near-duplicates ------------------------------------------------------------


def test_the_same_change_made_twice_is_kept_once() -> None:
    states: list[State] = [
        (GREEN, GREEN0, ()),
        (RED, RED1, (TYPE_ERROR,)),
        (GREEN, GREEN2, ()),
        (GREEN, GREEN0, ()),  # undone by hand (green → green: no episode)
        (RED, RED1, (TYPE_ERROR,)),  # and done again, with different indentation
        (
            GREEN,
            changed(GREEN2, "lib/shapes.ml", "  | Rect (w, h) -> abs", "    | Rect (w, h) ->  abs"),
            (),
        ),
    ]
    examples, report = collect(timeline(states), NO_CONTEXT)
    assert by_kind(examples) == [(EDIT, "s0"), (REPAIR, "s0")]
    assert report.duplicates == 2


def test_near_duplicates_by_jaccard_within_a_kind() -> None:
    ten = tuple(f"+let x{i} = {i}" for i in range(10))
    dedup = Dedup()
    dedup.keep(EDIT, ten)
    assert dedup.duplicate(EDIT, tuple(reversed(ten)))  # same set: 1.0
    assert dedup.duplicate(EDIT, (*ten, "+let y = 0"))  # 10/11 ≥ 0.9
    assert not dedup.duplicate(EDIT, (*ten, "+let y = 0", "+let z = 0"))  # 10/12
    assert not dedup.duplicate(REPAIR, (*ten, "+let y = 0"))  # another kind
    assert dedup.duplicate(REPAIR, ten)  # exactly equal: whatever the kind
    assert not dedup.duplicate(EDIT, ("+let x0 = 0",))


# -- split ----------------------------------------------------------------------


def _many_episodes(n: int) -> MemoryTimeline:
    """`n` green → red → green episodes, each adding a different function."""
    states: list[tuple[Snapshot, Mapping[str, bytes]]] = []
    files: dict[str, bytes] = dict(GREEN0)
    for k in range(n):
        states.append((snap(3 * k, GREEN, sid=f"g{k}"), files))
        broken = {**files, "lib/shapes.ml": files["lib/shapes.ml"] + f"let f{k} = x{k}\n".encode()}
        states.append((snap(3 * k + 1, RED, (TYPE_ERROR,), sid=f"r{k}"), broken))
        files = {**files, "lib/shapes.ml": files["lib/shapes.ml"] + f"let f{k} = {k}\n".encode()}
        states.append((snap(3 * k + 2, GREEN, sid=f"h{k}"), files))
    return MemoryTimeline(states)


def test_the_split_is_by_episode_deterministic_and_about_the_share() -> None:
    tl = _many_episodes(40)
    options = MineOptions(heldout_share=0.3, context=None)
    first = mine(tl, options)
    again = mine(tl, options)
    train = {e.episode for e in first.training}
    held = {e.episode for e in first.heldout}
    assert train and held and not train & held
    assert [e.id for e in first.heldout] == [e.id for e in again.heldout]
    assert len(first.training) + len(first.heldout) == 40 * 2 - 0  # an edit and a repair each
    for e in first.heldout:
        assert is_heldout(e.episode, 0.3)
    assert all(not is_heldout(e.episode, 0.3) for e in first.training)
    assert first.report.heldout == len(first.heldout)
    assert not mine(tl, MineOptions(heldout_share=0.0, context=None)).heldout


def test_heldout_hash_is_the_documented_one() -> None:
    import hashlib

    for episode in ("s0", "abc", "0" * 40):
        value = int(hashlib.sha256(episode.encode()).hexdigest()[:8], 16) / 2**32
        assert is_heldout(episode, 0.5) == (value < 0.5)


# -- JSON -----------------------------------------------------------------------


def test_json_lines_have_the_documented_shape(tmp_path: Path) -> None:
    result = mine(timeline(SESSION), MineOptions(heldout_share=0.0, context=None))
    out = tmp_path / "out" / "data.jsonl"
    write_jsonl(out, result.training)
    lines = out.read_text("utf-8").splitlines()
    assert len(lines) == 4
    rows = [json.loads(line) for line in lines]
    assert [list(r) for r in rows] == [
        [
            "id",
            "kind",
            "episode",
            "files_before",
            "context",
            "instruction",
            "instruction_source",
            "diff",
            "errors",
            "time",
            "files_after",
            "before",
            "after",
            "status_before",
            "status_after",
        ]
    ] * 4
    first = rows[0]
    assert len(first["id"]) == 16 and int(first["id"], 16) >= 0
    assert first["instruction"] == "" and first["instruction_source"] == "none"
    assert rows[1]["errors"] == [asdict(TYPE_ERROR)]
    # the change's two ends: the texts after, the snapshots and their build states
    log = timeline(SESSION).log()
    assert rows[0]["files_after"] == {"lib/shapes.ml": GREEN2["lib/shapes.ml"].decode()}
    assert (rows[0]["before"], rows[0]["after"]) == (log[0].id, log[2].id)
    assert (rows[0]["status_before"], rows[0]["status_after"]) == (GREEN, GREEN)
    assert (rows[1]["before"], rows[1]["status_before"]) == (log[1].id, RED)
    assert len({r["id"] for r in rows}) == 4
    # the id is stable: the same change mined again has the same id
    assert [e.id for e in mine(timeline(SESSION), NO_CONTEXT).training] == [r["id"] for r in rows]
    assert not list(out.parent.glob(".*"))  # no temporary file left


# -- context --------------------------------------------------------------------


def test_context_is_the_slice_at_the_first_change_of_the_before_state() -> None:
    result = mine(timeline(SESSION[:3]), MineOptions(heldout_share=0.0))
    edit, repair = result.training
    assert "### Target: `area`" in edit.context
    assert "lib/shapes.ml" in edit.context
    assert "Rect (w, h) -> w *. h" in edit.context  # the BEFORE state
    assert "Rect (w, h) -> w * h" in repair.context
    assert "val area : t -> float" in edit.context  # the other half of the module
    assert result.report.no_context == 0


def test_no_context_without_a_changed_ocaml_file() -> None:
    dune2 = changed(GREEN0, "lib/dune", "(name shapes)", "(name shapes)\n (flags :standard)")
    dune3 = changed(GREEN0, "lib/dune", "(name shapes)", "(name shapes)\n (flags :standard -w +a)")
    states: list[State] = [(GREEN, GREEN0, ()), (RED, dune2, (TYPE_ERROR,)), (GREEN, dune3, ())]
    result = mine(timeline(states), MineOptions(heldout_share=0.0))
    assert [e.context for e in result.training] == ["", ""]
    assert result.report.no_context == 2


# -- instructions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("make rectangle areas non-negative", "make rectangle areas non-negative"),
        ('"Make rectangle areas non-negative."', "Make rectangle areas non-negative"),
        ("Instruction: add a volume function\nIt computes ...", "add a volume function"),
        ("\n\n- `fix the type error in area`\n", "fix the type error in area"),
        ('"Instruction: add a volume function."', "add a volume function"),
        ("```\nadd volume to Shapes\n```", "add volume to Shapes"),
        (
            "add a volume function for circles and rectangles and export it from the module",
            "add a volume function for circles and rectangles and export it from",
        ),
        ("wait for it...", "wait for it..."),
        ("   \n  ", ""),
        ('""', ""),
    ],
)
def test_clean_instruction(answer: str, expected: str) -> None:
    assert clean_instruction(answer) == expected
    assert len(clean_instruction(answer).split()) <= 12
