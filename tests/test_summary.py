"""What one OCaml file defines, uses and opens: `ocaml_ai_ls.context.summary`."""

from __future__ import annotations

import pytest

from ocaml_ai_ls.context.parsing import SourceKind, parse
from ocaml_ai_ls.context.summary import (
    ChunkCache,
    Definition,
    DefKind,
    FileSummary,
    Import,
    Reference,
    RefKind,
    summarize,
)

ML = SourceKind.IMPLEMENTATION
MLI = SourceKind.INTERFACE


def summary_of(source: str, kind: SourceKind = ML, cache: ChunkCache | None = None) -> FileSummary:
    data = source.encode("utf-8")
    return summarize(parse(data, kind), data, kind, cache if cache is not None else ChunkCache())


def table(summary: FileSummary) -> list[tuple[str, DefKind, tuple[str, ...], int, int, int, int]]:
    """(name, kind, scope, line, start_line, sig_end_line, end_line) of every definition."""
    return [
        (d.name, d.kind, d.scope, d.line, d.start_line, d.sig_end_line, d.end_line)
        for d in summary.definitions
    ]


def one(summary: FileSummary, name: str, kind: DefKind | None = None) -> Definition:
    found = [d for d in summary.defined(name) if kind is None or d.kind is kind]
    assert len(found) == 1, found
    return found[0]


def refs(summary: FileSummary) -> set[tuple[tuple[str, ...], RefKind, int]]:
    return {(r.path, r.kind, r.line) for r in summary.references}


# --------------------------------------------------------------------------- definitions

IMPLEMENTATION = """\
let answer = 42
let add a b = a + b
let inc = fun x -> x + 1
let classify = function 0 -> "zero" | _ -> "other"
let ( +++ ) a b = a @ b
external c_len : string -> int = "c_len"
type shape = Circle of float | Square of float
type point = { x : int; mutable y : int }
exception Not_here of string
module Geo = struct
  let area r = r *. r
  module Inner = struct
    let depth = 2
  end
end
module G = Geo
module S = Kv.Make (Keys.Int)
module F (X : Ord) = struct
  let v = X.zero
end
module M : Sig = struct let m = 1 end
module type Ord = sig
  type t
  val zero : t
end
class counter = object
  val mutable n = 0
  method incr = n <- n + 1
end
let outer x =
  let local = x + 1 in
  local * 2
"""


def test_definitions_of_every_kind_in_an_implementation() -> None:
    s = summary_of(IMPLEMENTATION)
    assert table(s) == [
        ("answer", DefKind.VALUE, (), 0, 0, 0, 0),
        ("add", DefKind.FUNCTION, (), 1, 1, 1, 1),
        ("inc", DefKind.FUNCTION, (), 2, 2, 2, 2),
        ("classify", DefKind.FUNCTION, (), 3, 3, 3, 3),
        ("(+++)", DefKind.FUNCTION, (), 4, 4, 4, 4),
        ("c_len", DefKind.EXTERNAL, (), 5, 5, 5, 5),
        ("shape", DefKind.TYPE, (), 6, 6, 6, 6),
        ("Circle", DefKind.CONSTRUCTOR, (), 6, 6, 6, 6),
        ("Square", DefKind.CONSTRUCTOR, (), 6, 6, 6, 6),
        ("point", DefKind.TYPE, (), 7, 7, 7, 7),
        ("x", DefKind.FIELD, (), 7, 7, 7, 7),
        ("y", DefKind.FIELD, (), 7, 7, 7, 7),
        ("Not_here", DefKind.EXCEPTION, (), 8, 8, 8, 8),
        ("Geo", DefKind.MODULE, (), 9, 9, 9, 14),
        ("area", DefKind.FUNCTION, ("Geo",), 10, 10, 10, 10),
        ("Inner", DefKind.MODULE, ("Geo",), 11, 11, 11, 13),
        ("depth", DefKind.VALUE, ("Geo", "Inner"), 12, 12, 12, 12),
        ("G", DefKind.MODULE, (), 15, 15, 15, 15),
        ("S", DefKind.MODULE, (), 16, 16, 16, 16),
        ("F", DefKind.FUNCTOR, (), 17, 17, 17, 19),
        ("v", DefKind.VALUE, ("F",), 18, 18, 18, 18),
        ("M", DefKind.MODULE, (), 20, 20, 20, 20),
        ("m", DefKind.VALUE, ("M",), 20, 20, 20, 20),
        ("Ord", DefKind.MODULE_TYPE, (), 21, 21, 21, 24),
        ("t", DefKind.TYPE, ("Ord",), 22, 22, 22, 22),
        ("zero", DefKind.VALUE, ("Ord",), 23, 23, 23, 23),
        ("counter", DefKind.CLASS, (), 25, 25, 25, 28),
        ("outer", DefKind.FUNCTION, (), 29, 29, 29, 31),
    ]


def test_constructors_and_fields_name_their_type() -> None:
    s = summary_of(IMPLEMENTATION)
    assert one(s, "Circle").owner == "shape"
    assert one(s, "Square").owner == "shape"
    assert one(s, "x", DefKind.FIELD).owner == "point"
    assert one(s, "y", DefKind.FIELD).owner == "point"
    assert one(s, "shape").owner is None
    assert one(s, "Not_here").owner is None


def test_module_aliases_functor_applications_and_signatures() -> None:
    s = summary_of(IMPLEMENTATION)
    alias = one(s, "G")
    assert (alias.body, alias.args, alias.signature) == (("Geo",), (), None)
    applied = one(s, "S")
    assert (applied.body, applied.args) == (("Kv", "Make"), (("Keys", "Int"),))
    assert applied.kind is DefKind.MODULE
    constrained = one(s, "M")
    assert (constrained.body, constrained.signature) == (None, ("Sig",))
    structure = one(s, "Geo")
    assert (structure.body, structure.args, structure.signature) == (None, (), None)
    functor = one(s, "F")
    assert (functor.body, functor.signature) == (None, None)


def test_module_alias_with_a_constraint_keeps_body_and_signature() -> None:
    s = summary_of("module N : Kv.S with type t = int = Impl\n")
    n = one(s, "N")
    assert (n.kind, n.body, n.signature) == (DefKind.MODULE, ("Impl",), ("Kv", "S"))


def test_functor_applied_to_several_arguments() -> None:
    s = summary_of("module P = Pair.Make (Left) (Right.Sub)\n")
    p = one(s, "P")
    assert p.body == ("Pair", "Make")
    assert p.args == (("Left",), ("Right", "Sub"))


INTERFACE = """\
(** The answer. *)
val answer : int
val add : int -> int -> int
val ( +++ ) : 'a list -> 'a list -> 'a list
external c_len : string -> int = "c_len"
type shape = Circle of float | Square of float
type point = { x : int; mutable y : int }
exception Not_here of string
module Geo : sig
  val area : float -> float
end
module G = Geo
module type Ord = sig
  type t
  val zero : t
end
module F (X : Ord) : Ord with type t = X.t
class counter : object method incr : unit end
val labelled : x:int -> ?y:int -> unit -> int
"""


def test_definitions_of_every_kind_in_an_interface() -> None:
    s = summary_of(INTERFACE, MLI)
    assert table(s) == [
        ("answer", DefKind.VALUE, (), 1, 0, 1, 1),
        ("add", DefKind.FUNCTION, (), 2, 2, 2, 2),
        ("(+++)", DefKind.FUNCTION, (), 3, 3, 3, 3),
        ("c_len", DefKind.EXTERNAL, (), 4, 4, 4, 4),
        ("shape", DefKind.TYPE, (), 5, 5, 5, 5),
        ("Circle", DefKind.CONSTRUCTOR, (), 5, 5, 5, 5),
        ("Square", DefKind.CONSTRUCTOR, (), 5, 5, 5, 5),
        ("point", DefKind.TYPE, (), 6, 6, 6, 6),
        ("x", DefKind.FIELD, (), 6, 6, 6, 6),
        ("y", DefKind.FIELD, (), 6, 6, 6, 6),
        ("Not_here", DefKind.EXCEPTION, (), 7, 7, 7, 7),
        ("Geo", DefKind.MODULE, (), 8, 8, 8, 10),
        ("area", DefKind.FUNCTION, ("Geo",), 9, 9, 9, 9),
        ("G", DefKind.MODULE, (), 11, 11, 11, 11),
        ("Ord", DefKind.MODULE_TYPE, (), 12, 12, 12, 15),
        ("t", DefKind.TYPE, ("Ord",), 13, 13, 13, 13),
        ("zero", DefKind.VALUE, ("Ord",), 14, 14, 14, 14),
        ("F", DefKind.FUNCTOR, (), 16, 16, 16, 16),
        ("counter", DefKind.CLASS, (), 17, 17, 17, 17),
        ("labelled", DefKind.FUNCTION, (), 18, 18, 18, 18),
    ]
    assert one(s, "G").body == ("Geo",)
    assert one(s, "F").signature == ("Ord",)
    assert one(s, "Circle").owner == "shape"


def test_local_lets_parameters_and_match_variables_are_not_definitions() -> None:
    s = summary_of(
        """\
let outer x =
  let local = x + 1 in
  let rec loop n = if n = 0 then local else loop (n - 1) in
  let module L = List in
  match L.rev [ local ] with
  | first :: _ -> loop first
  | [] -> 0
"""
    )
    assert [(d.name, d.kind) for d in s.definitions] == [("outer", DefKind.FUNCTION)]
    assert one(s, "outer").end_line == 6
    for local in ("x", "local", "loop", "n", "first", "L"):
        assert list(s.defined(local)) == []


def test_let_with_a_type_annotation_is_a_function_only_with_a_function_body() -> None:
    s = summary_of(
        """\
let f : int -> int = fun x -> x
let g : int -> int = succ
let k ~lbl ?(o = 1) () = lbl + o
let () = print_endline "side effect"
"""
    )
    assert [(d.name, d.kind, d.line) for d in s.definitions] == [
        ("f", DefKind.FUNCTION, 0),
        ("g", DefKind.VALUE, 1),
        ("k", DefKind.FUNCTION, 2),
    ]


# --------------------------------------------------------------------------- signature lines


def test_a_multi_line_function_signature_ends_at_the_equals_line() -> None:
    s = summary_of(
        """\
let rec sum
    (xs : int list)
    (acc : int) =
  match xs with
  | [] -> acc
  | x :: rest -> sum rest (acc + x)
let short x =
  x
"""
    )
    assert table(s) == [
        ("sum", DefKind.FUNCTION, (), 0, 0, 2, 5),
        ("short", DefKind.FUNCTION, (), 6, 6, 6, 7),
    ]


def test_a_type_is_shown_whole_and_modules_up_to_their_opener() -> None:
    s = summary_of(
        """\
type color =
  | Red
  | Green of
      int
module Big =
  struct
    let a = 1
  end
module type T =
  sig
    val b : int
  end
class widget =
  object
    method c = 1
  end
"""
    )
    assert table(s) == [
        ("color", DefKind.TYPE, (), 0, 0, 3, 3),
        ("Red", DefKind.CONSTRUCTOR, (), 1, 0, 3, 3),
        ("Green", DefKind.CONSTRUCTOR, (), 2, 0, 3, 3),
        ("Big", DefKind.MODULE, (), 4, 4, 5, 7),
        ("a", DefKind.VALUE, ("Big",), 6, 6, 6, 6),
        ("T", DefKind.MODULE_TYPE, (), 8, 8, 9, 11),
        ("b", DefKind.VALUE, ("T",), 10, 10, 10, 10),
        ("widget", DefKind.CLASS, (), 12, 12, 13, 15),
    ]


def test_and_bound_items_start_on_their_own_line() -> None:
    s = summary_of(
        """\
(** Both. *)
let a = 1
and b =
  2
type t = int
and u = t list
"""
    )
    assert table(s) == [
        ("a", DefKind.VALUE, (), 1, 0, 1, 1),
        ("b", DefKind.VALUE, (), 2, 2, 2, 3),
        ("t", DefKind.TYPE, (), 4, 4, 5, 5),
        ("u", DefKind.TYPE, (), 5, 4, 5, 5),
    ]


def test_a_doc_comment_directly_above_starts_the_definition() -> None:
    s = summary_of(
        """\
(** Adds up
    a list. *)
let sum xs = List.fold_left ( + ) 0 xs

(** Detached: a blank line follows. *)

let detached = 1
(* a plain comment right above counts too *)
let plain = 2
module M = struct
  let p = 1
  (** Doc of q. *)
  let q = 2
end
"""
    )
    assert table(s) == [
        ("sum", DefKind.FUNCTION, (), 2, 0, 2, 2),
        ("detached", DefKind.VALUE, (), 6, 6, 6, 6),
        ("plain", DefKind.VALUE, (), 8, 7, 8, 8),
        ("M", DefKind.MODULE, (), 9, 9, 9, 13),
        ("p", DefKind.VALUE, ("M",), 10, 10, 10, 10),
        ("q", DefKind.VALUE, ("M",), 12, 11, 12, 12),
    ]
    assert [(c.start_line, c.end_line) for c in s.chunks] == [(0, 2), (6, 6), (7, 8), (9, 13)]


def test_a_doc_comment_after_a_match_is_not_swallowed_by_it() -> None:
    s = summary_of(
        """\
let f x =
  match x with
  | A -> 1
  | B -> 2
(** Doc of g. *)
let g = 2
"""
    )
    assert table(s) == [
        ("f", DefKind.FUNCTION, (), 0, 0, 0, 3),
        ("g", DefKind.VALUE, (), 5, 4, 5, 5),
    ]


def test_a_trailing_comment_of_the_previous_item_is_not_a_doc_comment() -> None:
    s = summary_of("let a = 1 (** about a *)\nlet b = 2\n")
    assert table(s) == [
        ("a", DefKind.VALUE, (), 0, 0, 0, 0),
        ("b", DefKind.VALUE, (), 1, 1, 1, 1),
    ]
    assert [(c.start_line, c.end_line) for c in s.chunks] == [(0, 0), (1, 1)]


# --------------------------------------------------------------------------- recursion


def test_recursive_flags() -> None:
    s = summary_of(
        """\
let rec f n = if n = 0 then 0 else f (n - 1)
let g n = n
let rec even n = n = 0 || odd (n - 1)
and odd n = n <> 0 && even (n - 1)
type t = Leaf | Node of t list
type nonrec u = int
and w = u list
exception E of int
module rec A : sig val x : int end = struct let x = 1 end
module B = struct end
"""
    )
    flags = {(d.name, d.kind): d.recursive for d in s.definitions}
    assert flags == {
        ("f", DefKind.FUNCTION): True,
        ("g", DefKind.FUNCTION): False,
        ("even", DefKind.FUNCTION): True,
        ("odd", DefKind.FUNCTION): True,
        ("t", DefKind.TYPE): True,
        ("Leaf", DefKind.CONSTRUCTOR): True,
        ("Node", DefKind.CONSTRUCTOR): True,
        ("u", DefKind.TYPE): False,
        ("w", DefKind.TYPE): False,
        ("E", DefKind.EXCEPTION): False,
        ("A", DefKind.MODULE): True,
        ("x", DefKind.VALUE): False,
        ("B", DefKind.MODULE): False,
    }


# --------------------------------------------------------------------------- references

USES = """\
let f r =
  let l = List.map succ [ 1 ] in
  let y = Foo.Bar.x in
  let s : Shape.t = Shape.Circle 1.0 in
  let v = r.Vec.x + { x = 1 }.x in
  (l, y, s, v)
module X = Y
module type T = module type of Z
module Z2 = Kv.Make (Keys.Int)
module C : Kv.S = Impl
let h p = match p with Some { Geo.px; _ } -> px | None -> Option.none
type m = Map.Make(String).t
let w = Ops.( +++ )
"""


def test_references_with_their_paths_kinds_and_lines() -> None:
    s = summary_of(USES)
    assert refs(s) == {
        (("List", "map"), RefKind.VALUE, 1),
        (("succ",), RefKind.VALUE, 1),
        (("Foo", "Bar", "x"), RefKind.VALUE, 2),
        (("Shape", "t"), RefKind.TYPE, 3),
        (("Shape", "Circle"), RefKind.CONSTRUCTOR, 3),
        (("r",), RefKind.VALUE, 4),
        (("Vec", "x"), RefKind.FIELD, 4),
        (("x",), RefKind.FIELD, 4),
        (("l",), RefKind.VALUE, 5),
        (("y",), RefKind.VALUE, 5),
        (("s",), RefKind.VALUE, 5),
        (("v",), RefKind.VALUE, 5),
        (("Y",), RefKind.MODULE, 6),
        (("Z",), RefKind.MODULE, 7),
        (("Kv", "Make"), RefKind.MODULE, 8),
        (("Keys", "Int"), RefKind.MODULE, 8),
        (("Kv", "S"), RefKind.MODULE_TYPE, 9),
        (("Impl",), RefKind.MODULE, 9),
        (("p",), RefKind.VALUE, 10),
        (("Some",), RefKind.CONSTRUCTOR, 10),
        (("Geo", "px"), RefKind.FIELD, 10),
        (("px",), RefKind.VALUE, 10),
        (("None",), RefKind.CONSTRUCTOR, 10),
        (("Option", "none"), RefKind.VALUE, 10),
        (("Map", "Make", "t"), RefKind.TYPE, 11),
        (("Ops", "(+++)"), RefKind.VALUE, 12),
    }
    # `{ x = 1 }.x` uses the field twice on the same line
    assert [r.path for r in s.references if r.kind is RefKind.FIELD and r.line == 4] == [
        ("Vec", "x"),
        ("x",),
        ("x",),
    ]
    assert [r.line for r in s.references] == sorted(r.line for r in s.references)


def test_a_module_inside_a_path_is_not_a_reference_of_its_own() -> None:
    s = summary_of("let y = Foo.Bar.x\nlet z = Shape.Circle\n")
    assert [(r.path, r.kind) for r in s.references] == [
        (("Foo", "Bar", "x"), RefKind.VALUE),
        (("Shape", "Circle"), RefKind.CONSTRUCTOR),
    ]


def test_type_references_in_an_interface() -> None:
    s = summary_of(
        """\
val find : (string, 'a) Hashtbl.t -> string -> 'a option
type t = { name : Name.t; tags : string list }
""",
        MLI,
    )
    assert refs(s) == {
        (("Hashtbl", "t"), RefKind.TYPE, 0),
        (("string",), RefKind.TYPE, 0),
        (("option",), RefKind.TYPE, 0),
        (("Name", "t"), RefKind.TYPE, 1),
        (("string",), RefKind.TYPE, 1),
        (("list",), RefKind.TYPE, 1),
    }


def test_used_names_are_the_last_components_of_references() -> None:
    s = summary_of("let a = List.map Foo.f xs\nlet b : M.t = Shape.Circle\n")
    assert s.used_names == frozenset({"map", "f", "xs", "t", "Circle"})


# --------------------------------------------------------------------------- imports


def test_opens_and_includes_with_their_scope_and_locality() -> None:
    s = summary_of(
        """\
open Stdlib
open! Base
include Util
let f () =
  let open Printf in
  let w = M.( a + b ) in
  let z = let open! Option in none in
  (w, z)
module Outer = struct
  open Inner
  module Deeper = struct
    include Other.Sub
  end
end
include (Impl : Sig)
"""
    )
    assert list(s.imports) == [
        Import(("Stdlib",), False, 0, (), False),
        Import(("Base",), False, 1, (), False),
        Import(("Util",), True, 2, (), False),
        # a local open reaches to the end of its expression
        Import(("Printf",), False, 4, (), True, end_line=7),
        Import(("M",), False, 5, (), True, end_line=5),
        Import(("Option",), False, 6, (), True, end_line=6),
        Import(("Inner",), False, 9, ("Outer",), False),
        Import(("Other", "Sub"), True, 11, ("Outer", "Deeper"), False),
        Import(("Impl",), True, 14, (), False),
    ]
    # the module of an open or a plain include is not also a module reference
    assert [r.path for r in s.references if r.kind is RefKind.MODULE and r.line < 14] == []


def test_opening_a_structure_or_including_an_application_is_not_an_import() -> None:
    s = summary_of("open struct let hidden = 1 end\ninclude Make (Arg)\n")
    assert s.imports == ()


def test_open_in_an_interface_is_an_import() -> None:
    s = summary_of("open Base\nmodule Sub : sig\n  open Inner\n  val x : t\nend\n", MLI)
    assert list(s.imports) == [
        Import(("Base",), False, 0, (), False),
        Import(("Inner",), False, 2, ("Sub",), False),
    ]


# --------------------------------------------------------------------------- let module


def test_let_module_is_a_local_module_not_a_definition() -> None:
    s = summary_of(
        """\
let x = 1
let g x =
  let module T = S.Formats.Tsv in
  T.encode
    x
let after = 2
"""
    )
    assert [d.name for d in s.definitions] == ["x", "g", "after"]
    assert len(s.local_modules) == 1
    t = s.local_modules[0]
    assert (t.name, t.kind, t.body) == ("T", DefKind.MODULE, ("S", "Formats", "Tsv"))
    assert (t.line, t.start_line, t.sig_end_line, t.end_line) == (2, 2, 2, 4)
    assert (("S", "Formats", "Tsv"), RefKind.MODULE, 2) in refs(s)
    assert (("T", "encode"), RefKind.VALUE, 3) in refs(s)


def test_local_modules_are_shifted_with_their_chunk() -> None:
    body = "let g () =\n  let module L = List in\n  L.length []\n"
    s = summary_of("(** doc *)\n" + "let a = 1\n\n" + body)
    assert [(d.name, d.line, d.end_line) for d in s.local_modules] == [("L", 4, 5)]


# --------------------------------------------------------------------------- chunk cache

CACHED = """\
(** First. *)
let a = 1

let b x = x + 1

type t = A | B
"""


def test_summarizing_the_same_source_twice_hits_the_cache() -> None:
    cache = ChunkCache()
    first = summary_of(CACHED, cache=cache)
    assert (cache.hits, cache.misses, len(cache)) == (0, 3, 3)
    second = summary_of(CACHED, cache=cache)
    assert (cache.hits, cache.misses, len(cache)) == (3, 3, 3)
    assert second.definitions == first.definitions
    assert second.references == first.references


def test_editing_one_item_only_summarizes_that_chunk_again() -> None:
    cache = ChunkCache()
    summary_of(CACHED, cache=cache)
    edited = summary_of(CACHED.replace("x + 1", "x + y"), cache=cache)
    assert (cache.hits, cache.misses) == (2, 4)
    assert (("y",), RefKind.VALUE, 3) in refs(edited)


def test_inserting_lines_above_shifts_cached_definitions() -> None:
    cache = ChunkCache()
    summary_of(CACHED, cache=cache)
    moved = summary_of("\n\n" + CACHED, cache=cache)
    assert (cache.hits, cache.misses) == (3, 3)
    assert table(moved) == [
        ("a", DefKind.VALUE, (), 3, 2, 3, 3),
        ("b", DefKind.FUNCTION, (), 5, 5, 5, 5),
        ("t", DefKind.TYPE, (), 7, 7, 7, 7),
        ("A", DefKind.CONSTRUCTOR, (), 7, 7, 7, 7),
        ("B", DefKind.CONSTRUCTOR, (), 7, 7, 7, 7),
    ]
    assert [(r.path, r.line) for r in moved.references] == [(("x",), 5)]
    assert [(c.start_line, c.end_line) for c in moved.chunks] == [(2, 3), (5, 5), (7, 7)]


def test_growing_an_item_shifts_the_items_below_it() -> None:
    cache = ChunkCache()
    summary_of(CACHED, cache=cache)
    grown = summary_of(CACHED.replace("let a = 1\n", "let a =\n  1\n"), cache=cache)
    assert (cache.hits, cache.misses) == (2, 4)
    assert [(d.name, d.line, d.start_line, d.end_line) for d in grown.definitions] == [
        ("a", 1, 0, 2),
        ("b", 4, 4, 4),
        ("t", 6, 6, 6),
        ("A", 6, 6, 6),
        ("B", 6, 6, 6),
    ]


def test_cached_and_fresh_summaries_agree() -> None:
    cache = ChunkCache()
    summary_of(IMPLEMENTATION, cache=cache)
    shifted = "let first = 0\n" + IMPLEMENTATION
    warm = summary_of(shifted, cache=cache)
    cold = summary_of(shifted)
    assert warm.definitions == cold.definitions
    assert warm.references == cold.references
    assert warm.imports == cold.imports
    assert warm.definitions[1] == Definition(
        name="answer",
        kind=DefKind.VALUE,
        scope=(),
        line=1,
        start_line=1,
        sig_end_line=1,
        end_line=1,
    )


def test_the_cache_keeps_the_two_grammars_apart() -> None:
    cache = ChunkCache()
    summary_of("type t = int\n", ML, cache)
    summary_of("type t = int\n", MLI, cache)
    assert (cache.hits, cache.misses, len(cache)) == (0, 2, 2)


# --------------------------------------------------------------------------- file summary


def test_chunk_at_defined_and_line_count() -> None:
    s = summary_of(CACHED)
    chunk = s.chunk_at(1)
    assert chunk is not None and (chunk.start_line, chunk.end_line) == (0, 1)
    assert s.chunk_at(0) is chunk
    assert s.chunk_at(2) is None  # the blank line between items
    later = s.chunk_at(5)
    assert later is not None and later.start_line == 5
    assert s.chunk_at(6) is None
    assert [d.line for d in s.defined("b")] == [3]
    assert list(s.defined("nope")) == []
    assert s.line_count == 6
    assert summary_of("let a = 1").line_count == 1
    assert summary_of("").line_count == 0
    assert summary_of("").definitions == ()


# --------------------------------------------------------------------------- syntax errors


def test_a_broken_item_keeps_the_items_around_it() -> None:
    s = summary_of(
        """\
let before = 1

let = 3

let after x = x

type t = A
"""
    )
    assert table(s) == [
        ("before", DefKind.VALUE, (), 0, 0, 0, 0),
        ("after", DefKind.FUNCTION, (), 4, 4, 4, 4),
        ("t", DefKind.TYPE, (), 6, 6, 6, 6),
        ("A", DefKind.CONSTRUCTOR, (), 6, 6, 6, 6),
    ]


def test_a_stray_closing_parenthesis_keeps_the_items_around_it() -> None:
    s = summary_of("let before = 1\n\nlet f = x)\n\nlet after x = x\n\ntype t = A\n")
    assert [(d.name, d.line) for d in s.definitions] == [
        ("before", 0),
        ("f", 2),
        ("after", 4),
        ("t", 6),
        ("A", 6),
    ]


@pytest.mark.xfail(
    strict=True,
    reason="an unclosed `(` makes tree-sitter swallow the rest of the file into one ERROR node; "
    "the items after it are lost",
)
def test_an_unclosed_parenthesis_keeps_the_items_after_it() -> None:
    s = summary_of("let before = 1\n\nlet f = (\n\nlet after x = x\n\ntype t = A\n")
    assert [(d.name, d.line) for d in s.definitions] == [
        ("before", 0),
        ("f", 2),
        ("after", 4),
        ("t", 6),
        ("A", 6),
    ]


def test_an_unclosed_parenthesis_does_not_raise_and_keeps_what_precedes_it() -> None:
    s = summary_of("let before = 1\n\nlet f = (\n\nlet after x = x\n\ntype t = A\n")
    assert [(d.name, d.kind, d.line) for d in s.definitions][:2] == [
        ("before", DefKind.VALUE, 0),
        ("f", DefKind.VALUE, 2),
    ]


# --------------------------------------------------------------------------- non-ASCII


def test_non_ascii_identifiers_and_strings_keep_line_numbers() -> None:
    s = summary_of(
        """\
let café = "naïve — ☃"
let s = "日本語
sur deux lignes 🎉"
let après x = x ^ café
type été = Été of string
"""
    )
    assert table(s) == [
        ("café", DefKind.VALUE, (), 0, 0, 0, 0),
        ("s", DefKind.VALUE, (), 1, 1, 1, 2),
        ("après", DefKind.FUNCTION, (), 3, 3, 3, 3),
        ("été", DefKind.TYPE, (), 4, 4, 4, 4),
        ("Été", DefKind.CONSTRUCTOR, (), 4, 4, 4, 4),
    ]
    assert one(s, "Été").owner == "été"
    assert refs(s) == {
        (("x",), RefKind.VALUE, 3),
        (("café",), RefKind.VALUE, 3),
        (("string",), RefKind.TYPE, 4),
    }


# --------------------------------------------------------------------------- bugs


def test_an_operator_use_finds_its_definition_by_name() -> None:
    s = summary_of("let ( +++ ) a b = a @ b\nlet z = List.fold_left ( +++ ) [] []\n")
    uses = [r for r in s.references if r.path[-1].startswith("(")]
    assert [r.path for r in uses] == [("(+++)",)]
    assert [d.line for d in s.defined(uses[0].path[-1])] == [0]


@pytest.mark.xfail(
    strict=True,
    reason="a `val` whose type is an explicitly polymorphic or parenthesized arrow is a VALUE",
)
def test_polymorphic_and_parenthesized_arrow_specifications_are_functions() -> None:
    s = summary_of("val id : 'a. 'a -> 'a\nval g : (int -> int)\n", MLI)
    assert [(d.name, d.kind) for d in s.definitions] == [
        ("id", DefKind.FUNCTION),
        ("g", DefKind.FUNCTION),
    ]


@pytest.mark.xfail(
    strict=True,
    reason="`type t += C` records C with owner '' (the extended type is a path, not a name)",
)
def test_an_extension_constructor_names_the_extended_type() -> None:
    s = summary_of("type t += Ext of int\n")
    assert [(d.name, d.kind, d.owner) for d in s.definitions] == [("Ext", DefKind.CONSTRUCTOR, "t")]


def test_references_are_reference_objects() -> None:
    s = summary_of("let a = b\n")
    assert s.references == (Reference(("b",), RefKind.VALUE, 0),)
