"""Scoring the entries of modules in scope (`ocaml_ai_ls.context.modules`), on hand-built
entries and modules, and reading a file's entries from its text."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from ocaml_ai_ls.context.index import ModuleUnit
from ocaml_ai_ls.context.model import INTERFACE, MODULE
from ocaml_ai_ls.context.modules import (
    DECLARES_TARGET,
    MAIN_TYPE,
    NAMED_ENTRY,
    NAMED_MAX,
    NAMED_MIN,
    Entry,
    InScope,
    Scored,
    file_entries,
    named_weights,
    score_entries,
)
from ocaml_ai_ls.context.parsing import SourceKind, parse
from ocaml_ai_ls.context.resolve import UnitScope
from ocaml_ai_ls.context.summary import ChunkCache, Definition, DefKind, summarize
from ocaml_ai_ls.context.words import Words

LWT = ModuleUnit("Lwt", "src/core", None)


def entry(
    name: str, line: int, kind: DefKind = DefKind.FUNCTION, scope: tuple[str, ...] = ()
) -> Entry:
    d = Definition(name, kind, scope, line, line, line, line)
    return Entry(d, (line,), (f"val {name} : unit",), (line,), 8, 8, False)


ENTRIES = (
    entry("t", 0, DefKind.TYPE),
    entry("return", 1),
    entry("bind", 2),
    entry("pause", 3),
    entry("wakeup_paused", 4),
    entry("map", 5, scope=("Infix",)),
)
USAGE = {("Lwt", "return"): 800, ("Lwt", "bind"): 300, ("Lwt", "pause"): 4, ("Infix", "map"): 2}


def scores(
    module: InScope,
    usage: Mapping[tuple[str, str], int] = USAGE,
    here: Mapping[str, Mapping[str, int]] | None = None,
    instruction: str = "",
) -> dict[str, float]:
    s = score_entries(module, "src/core/lwt.mli", ENTRIES, usage, here or {}, Words.of(instruction))
    return {
        f"{w}.{e.definition.name}": x
        for w, e, x in zip(s.written, s.entries, s.scores, strict=True)
    }


def lwt(weight: float = 0.8, **kwargs: object) -> InScope:
    return InScope(UnitScope(LWT), weight, "the file names Lwt", **kwargs)  # type: ignore[arg-type]


def test_named_weights_follow_the_share_of_mentions() -> None:
    w = named_weights({"Lwt": 90.0, "Lwt_io": 9.0, "Printf": 1.0})
    assert w["Lwt"] == NAMED_MAX  # 3 × 0.9, capped
    assert w["Lwt_io"] == pytest.approx(3 * 0.09)
    assert w["Printf"] == NAMED_MIN  # 3 × 0.01, raised to the floor
    assert named_weights({}) == {}


def test_every_entry_of_the_module_and_its_submodules_is_scored() -> None:
    s = scores(lwt())
    assert list(s) == [
        "Lwt.t",
        "Lwt.return",
        "Lwt.bind",
        "Lwt.pause",
        "Lwt.wakeup_paused",
        "Infix.map",
    ]
    assert all(0 < x <= 0.8 for x in s.values())  # never above the module's weight


def test_what_the_project_writes_often_comes_first() -> None:
    s = scores(lwt())
    assert s["Lwt.return"] > s["Lwt.bind"] > s["Lwt.pause"] > s["Lwt.wakeup_paused"]


def test_an_entry_this_file_writes_is_more_likely() -> None:
    plain = scores(lwt())
    here = scores(lwt(), here={"Lwt": {"pause": 2}})
    assert here["Lwt.pause"] > plain["Lwt.pause"]
    assert here["Lwt.bind"] == plain["Lwt.bind"]


def test_the_instruction_raises_what_it_names_or_shares_words_with() -> None:
    plain = scores(lwt())
    named = scores(lwt(), instruction="Document Lwt_main.yield encouraging the use of Lwt.pause")
    assert named["Lwt.pause"] >= 0.8 * NAMED_ENTRY
    worded = scores(lwt(), instruction="wake up the paused promises")
    assert worded["Lwt.wakeup_paused"] > plain["Lwt.wakeup_paused"]
    assert worded["Lwt.bind"] == plain["Lwt.bind"]


def test_the_main_type_is_at_least_fairly_likely() -> None:
    assert scores(lwt(weight=1.0))["Lwt.t"] >= MAIN_TYPE


def test_a_submodule_scores_its_own_entries_as_written_through_it() -> None:
    infix = InScope(UnitScope(LWT, ("Infix",)), 0.8, "the file opens Lwt.Infix")
    s = score_entries(infix, "src/core/lwt.mli", ENTRIES, USAGE, {}, Words.of(""))
    assert [(w, e.definition.name) for w, e in zip(s.written, s.entries, strict=True)] == [
        ("Infix", "map")
    ]


def test_the_other_half_prefers_entries_defined_near_the_target() -> None:
    usage = {("Lwt", "pause"): 5, ("Lwt", "bind"): 5}
    near = {"pause": 1.0, "bind": 0.05}
    half = InScope(UnitScope(LWT), 0.9, "the other half", INTERFACE, near)
    s = scores(half, usage=usage)
    assert s["Lwt.pause"] > s["Lwt.bind"]
    far = scores(InScope(UnitScope(LWT), 0.9, "the other half", INTERFACE), usage=usage)
    assert far["Lwt.pause"] == far["Lwt.bind"]


def test_the_declaration_of_the_target_and_a_small_half_floor() -> None:
    half = InScope(UnitScope(LWT), 0.9, "the other half", INTERFACE, None, 0.6, frozenset({"bind"}))
    s = scores(half)
    assert s["Lwt.bind"] == DECLARES_TARGET
    assert min(s.values()) >= 0.9 * 0.6


def test_a_candidate_says_why() -> None:
    s: Scored = score_entries(
        lwt(), "src/core/lwt.mli", ENTRIES, USAGE, {"Lwt": {"return": 3}}, Words.of("")
    )
    c = s.candidate(1)
    assert (c.role, c.rel, c.lines, c.texts, c.label) == (
        MODULE,
        "src/core/lwt.mli",
        (1,),
        ("val return : unit",),
        "Lwt.return: function",
    )
    assert c.reason == (
        "the file names Lwt; Lwt.return is written 800× in the project; 3× in this file"
    )


MLI = """\
(** Promises. *)
type 'a t

(** [return v] is a resolved promise.

    Use it often. *)
val return : 'a -> 'a t

type state =
  | Return of int
  | Fail of exn
  | Sleep
  | A | B | C | D
  | E | F | G | H
  | I | J | K
  | L
  | M
  | N
  | O
  | P

module Infix : sig
  val ( >>= ) : 'a t -> ('a -> 'b t) -> 'b t
end

module type S = sig
  val run : unit -> unit
end
"""


def test_a_files_entries_in_full_and_briefly() -> None:
    data = MLI.encode()
    summary = summarize(parse(data, SourceKind.INTERFACE), data, SourceKind.INTERFACE, ChunkCache())
    lines = MLI.splitlines()
    found = {e.definition.name: e for e in file_entries(summary, lambda: lines)}
    assert set(found) == {"t", "return", "state", "Infix", "(>>=)", "S", "run"}  # no constructors
    ret = found["return"]
    assert ret.lines == (3, 4, 5, 6) and ret.brief == (6,)  # the doc comment only in full
    state = found["state"]
    assert state.lines == tuple(range(8, 20)) and state.brief == (8,)  # long type: first line
    bind = found["(>>=)"]
    assert bind.lines == bind.brief == (21, 22)  # with the header of its module
    assert bind.texts == ("module Infix : sig", "  val ( >>= ) : 'a t -> ('a -> 'b t) -> 'b t")
    assert found["run"].in_module_type and not bind.in_module_type
    assert ret.cost < ret.full_cost


def test_a_files_entries_are_read_once_per_version() -> None:
    data = MLI.encode()
    summary = summarize(parse(data, SourceKind.INTERFACE), data, SourceKind.INTERFACE, ChunkCache())
    reads: list[int] = []

    def read() -> list[str]:
        reads.append(1)
        return MLI.splitlines()

    first = file_entries(summary, read)
    assert file_entries(summary, read) is first
    assert len(reads) == 1
    assert file_entries(summary, lambda: None) is first  # no read needed
