"""A generated dune project for the verification benchmarks: an inventory library.

`make_project(dest, modules=30, seed=0)` writes, deterministically per
(modules, seed):

- `lib/`: the wrapped library `inventory`, `modules` modules in layers (each
  module of layer i uses one module of layer i-1 and up to two earlier ones):
  records, variants with inline records, a state machine, a mutable ledger with
  an exception, prices in floats, a `Registry.Make` functor (with its `.mli`)
  instantiated by several modules, and a local functor applied to an upstream
  module; about a third of the modules have an `.mli`;
- `reporting/`: a small library over the top layer, and `bin/` an executable;
- `test/`: three tests (`(tests ...)`) that `assert` over every module.

It needs the standard library only (OCaml 4.13, dune 2.9) and builds green with
`dune build @check` and `dune test` in the dev profile (warnings as errors).

`one_function_edit(root, k)` and `type_error_edit(root, k)` give a changed text
of one function (`score`) of a middle-layer module, different for each `k`: the
first compiles and keeps the tests green, the second is a type error. Neither
changes the module's interface.

    python -m benchmarks.dune_fixture DEST [--modules 30] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

#: Module names of the library, in order of generation (more get a numeric suffix).
NOUNS = (
    "money",
    "quantity",
    "sku",
    "category",
    "supplier",
    "warehouse",
    "bin_slot",
    "lot",
    "batch",
    "expiry",
    "price_list",
    "discount",
    "tax_rule",
    "stock_level",
    "reservation",
    "order_line",
    "purchase_order",
    "sales_order",
    "shipment",
    "carrier",
    "route",
    "invoice",
    "payment",
    "ledger",
    "reorder_policy",
    "forecast",
    "audit_log",
    "cycle_count",
    "transfer",
    "return_request",
    "valuation",
    "alert",
    "kpi",
    "dashboard",
)
#: Kinds of modules; layer 0 has no upstream module, so no `ranked` or `keyed` there.
KINDS = ("record", "variant", "keyed", "ranked", "ledger", "pricing")
BASE_KINDS = ("record", "variant", "ledger", "pricing")
LIBRARY = "inventory"


@dataclass
class _Module:
    stem: str
    layer: int
    kind: str
    deps: list[str] = field(default_factory=list)
    mli: bool = False
    consts: tuple[int, int, int] = (3, 7, 11)

    @property
    def name(self) -> str:
        return self.stem.capitalize()


# --- the library's modules -------------------------------------------------------------

REGISTRY_ML = """\
(* Registry: finite maps keyed by codes, shared by every module that indexes things. *)

module type KEY = sig
  type t

  val compare : t -> t -> int
  val to_string : t -> string
end

module type S = sig
  type key
  type 'a t

  val empty : 'a t
  val add : key -> 'a -> 'a t -> 'a t
  val find_opt : key -> 'a t -> 'a option
  val fold : (key -> 'a -> 'b -> 'b) -> 'a t -> 'b -> 'b
  val union : ('a -> 'a -> 'a) -> 'a t -> 'a t -> 'a t
  val cardinal : 'a t -> int
  val to_list : 'a t -> (key * 'a) list
  val describe : ('a -> string) -> 'a t -> string
end

module Make (K : KEY) = struct
  module M = Map.Make (K)

  type key = K.t
  type 'a t = 'a M.t

  let empty = M.empty
  let add key value map = M.add key value map
  let find_opt key map = M.find_opt key map
  let fold f map init = M.fold f map init
  let union f a b = M.union (fun _ x y -> Some (f x y)) a b
  let cardinal map = M.cardinal map
  let to_list map = M.bindings map

  let describe show map =
    let item (key, value) = Printf.sprintf "%s=%s" (K.to_string key) (show value) in
    "{" ^ String.concat ", " (List.map item (to_list map)) ^ "}"
end
"""

REGISTRY_MLI = """\
(** Finite maps keyed by codes (a thin layer over [Map.Make]). *)

module type KEY = sig
  type t

  val compare : t -> t -> int
  val to_string : t -> string
end

module type S = sig
  type key
  type 'a t

  val empty : 'a t
  val add : key -> 'a -> 'a t -> 'a t
  val find_opt : key -> 'a t -> 'a option
  val fold : (key -> 'a -> 'b -> 'b) -> 'a t -> 'b -> 'b

  val union : ('a -> 'a -> 'a) -> 'a t -> 'a t -> 'a t
  (** Bindings of both; [f] merges the values of a key bound in both. *)

  val cardinal : 'a t -> int
  val to_list : 'a t -> (key * 'a) list
  val describe : ('a -> string) -> 'a t -> string
end

module Make (K : KEY) : S with type key = K.t
"""

UNIFORM_SIG = """\
type t

val make : int -> t
(** The [n]th sample value (deterministic). *)

val score : t -> int
(** A non-negative figure of merit. *)

val describe : t -> string
val combine : t -> t -> t
val valid : t -> bool
"""

TEMPLATES: dict[str, tuple[str, str]] = {}

TEMPLATES["record"] = (
    """\
type t = {
  id : int;
  label : string;
  quantity : int;
  weight : int;
  tags : string list;
}

let make n =
  {
    id = n;
    label = Printf.sprintf "$stem-%03d" n;
    quantity = (n * $a mod $b) + 1;
    weight = upstream n + $c;
    tags = [ upstream_label n ];
  }

let score t =
  let base = (t.quantity * $a) + t.weight in
  let penalty = List.length t.tags in
  max 0 (base - penalty)

let describe t =
  Printf.sprintf "%s x%d [%s]" t.label t.quantity (String.concat "; " t.tags)

let combine a b =
  {
    id = min a.id b.id;
    label = a.label;
    quantity = a.quantity + b.quantity;
    weight = max a.weight b.weight;
    tags = List.sort_uniq String.compare (a.tags @ b.tags);
  }

let heavier a b = if a.weight >= b.weight then a else b
let total items = List.fold_left (fun acc t -> acc + score t) 0 items

let validate t =
  if t.quantity <= 0 then Error (Printf.sprintf "%s: quantity must be positive" t.label)
  else if t.weight < 0 then Error (Printf.sprintf "%s: negative weight" t.label)
  else Ok t

let valid t = match validate t with Ok _ -> true | Error _ -> false
""",
    """\
val heavier : t -> t -> t
val total : t list -> int
val validate : t -> (t, string) result
""",
)

TEMPLATES["variant"] = (
    """\
type status =
  | Draft
  | Open of int
  | On_hold of string
  | Closed of { at : int; reason : string }

type t = { key : int; status : status; history : status list }

let status_of n =
  match n mod 4 with
  | 0 -> Draft
  | 1 -> Open (upstream n)
  | 2 -> On_hold (upstream_label n)
  | _ -> Closed { at = n; reason = "settled" }

let make n = { key = n; status = status_of n; history = [] }
let status t = t.status

let weight = function
  | Draft -> 1
  | Open k -> 2 + (k mod $a)
  | On_hold reason -> String.length reason mod $b
  | Closed { at; reason = _ } -> at mod 3

let score t =
  List.fold_left (fun acc s -> acc + weight s) (weight t.status) t.history

let is_terminal = function Closed _ -> true | Draft | Open _ | On_hold _ -> false

let advance t next =
  if is_terminal t.status then t
  else { t with status = next; history = t.status :: t.history }

let label = function
  | Draft -> "draft"
  | Open k -> Printf.sprintf "open(%d)" k
  | On_hold reason -> "on hold: " ^ reason
  | Closed { at; reason } -> Printf.sprintf "closed at %d (%s)" at reason

let describe t =
  Printf.sprintf "$stem #%d %s after %d steps" t.key (label t.status)
    (List.length t.history)

let combine a b =
  let first, second = if a.key <= b.key then (a, b) else (b, a) in
  advance first second.status

let valid t = t.key >= 0 && List.length t.history < 10_000
""",
    """\
type status =
  | Draft
  | Open of int
  | On_hold of string
  | Closed of { at : int; reason : string }

val status : t -> status
val is_terminal : status -> bool

val advance : t -> status -> t
(** Move to the next status (terminal statuses stay). *)
""",
)

TEMPLATES["keyed"] = (
    """\
module By_code = Registry.Make (struct
  type t = string

  let compare = String.compare
  let to_string code = code
end)

type t = { owner : string; entries : int By_code.t }

let make n =
  let entries =
    By_code.empty
    |> By_code.add (Printf.sprintf "$stem-%d" n) (n mod $a)
    |> By_code.add (upstream_label n) (upstream n)
  in
  { owner = Printf.sprintf "owner-%d" (n mod $b); entries }

let score t =
  By_code.fold (fun _ count acc -> acc + count) t.entries 0

let describe t = t.owner ^ " " ^ By_code.describe string_of_int t.entries

let combine a b =
  { owner = a.owner; entries = By_code.union ( + ) a.entries b.entries }

let lookup t code = By_code.find_opt code t.entries
let size t = By_code.cardinal t.entries
let codes t = List.map fst (By_code.to_list t.entries)
let valid t = size t > 0 && String.length t.owner > 0
""",
    """\
val lookup : t -> string -> int option
val size : t -> int
val codes : t -> string list
""",
)

TEMPLATES["ranked"] = (
    """\
module type SCORED = sig
  type t

  val score : t -> int
  val describe : t -> string
end

module Ranking (S : SCORED) = struct
  let best items =
    List.fold_left
      (fun acc x ->
        match acc with Some y when S.score y >= S.score x -> acc | _ -> Some x)
      None items

  let sorted items =
    List.stable_sort (fun a b -> compare (S.score b) (S.score a)) items

  let report items = String.concat "\\n" (List.map S.describe (sorted items))
end

module Upstream_ranking = Ranking ($first)

type t = { name : string; picks : int list; threshold : int }

let make n =
  {
    name = upstream_label n;
    picks = List.init ((n mod $a) + 1) (fun i -> $first.score ($first.make (n + i)));
    threshold = upstream n mod $b;
  }

let score t =
  let above = List.filter (fun p -> p >= t.threshold) t.picks in
  t.threshold + List.length above

let describe t =
  Printf.sprintf "%s: %d picks over %d" t.name (List.length t.picks) t.threshold

let combine a b =
  { name = a.name; picks = a.picks @ b.picks; threshold = min a.threshold b.threshold }

let top n = Upstream_ranking.best (List.init n $first.make)
let leaderboard n = Upstream_ranking.report (List.init n $first.make)
let valid t = t.threshold >= 0 && t.picks <> []
""",
    """\
val top : int -> $first.t option
(** The best of the first [n] upstream samples. *)

val leaderboard : int -> string
""",
)

TEMPLATES["ledger"] = (
    """\
exception Overdrawn of string

type entry = { account : string; amount : int; memo : string }
type t = { mutable balance : int; entries : entry Queue.t; limit : int }

let create limit = { balance = 0; entries = Queue.create (); limit }
let balance t = t.balance

let post t entry =
  let next = t.balance + entry.amount in
  if next < -t.limit then raise (Overdrawn entry.account);
  t.balance <- next;
  Queue.push entry t.entries

let make n =
  let t = create ($a + (n mod $b)) in
  post t { account = upstream_label n; amount = upstream n; memo = "opening" };
  post t { account = "adjustment"; amount = n mod $c; memo = "rounding" };
  t

let score t =
  max 0 t.balance

let entries t = List.of_seq (Queue.to_seq t.entries)

let describe t =
  let buf = Buffer.create 64 in
  Buffer.add_string buf (Printf.sprintf "$stem balance %d" t.balance);
  Queue.iter
    (fun e -> Buffer.add_string buf (Printf.sprintf "\\n  %s %+d (%s)" e.account e.amount e.memo))
    t.entries;
  Buffer.contents buf

let combine a b =
  let t = create (a.limit + b.limit) in
  Queue.iter (post t) a.entries;
  Queue.iter (post t) b.entries;
  t

let try_post t entry =
  match post t entry with () -> Ok t.balance | exception Overdrawn account -> Error account

let valid t = t.balance >= -t.limit
""",
    """\
exception Overdrawn of string

type entry = { account : string; amount : int; memo : string }

val create : int -> t
val balance : t -> int

val post : t -> entry -> unit
(** @raise Overdrawn when the balance would go below the limit. *)

val try_post : t -> entry -> (int, string) result
val entries : t -> entry list
""",
)

TEMPLATES["pricing"] = (
    """\
type tier = Bronze | Silver | Gold
type t = { base : int; tier : tier; discount : float option; region : string }

let tier_of_points points =
  if points >= $a * 10 then Gold else if points >= $a then Silver else Bronze

let rate = function Bronze -> 0.0 | Silver -> 0.05 | Gold -> 0.12
let tier_name = function Bronze -> "bronze" | Silver -> "silver" | Gold -> "gold"

let make n =
  {
    base = 100 + upstream n;
    tier = tier_of_points (n * $b);
    discount = (if n mod 3 = 0 then Some 0.1 else None);
    region = upstream_label n;
  }

let base t = t.base
let tier t = t.tier

let price t =
  let after_tier = float_of_int t.base *. (1.0 -. rate t.tier) in
  match t.discount with Some d -> after_tier *. (1.0 -. d) | None -> after_tier

let score t =
  int_of_float (Float.round (price t))

let describe t = Printf.sprintf "%s %s: %.2f" t.region (tier_name t.tier) (price t)

let combine a b =
  let discount =
    match (a.discount, b.discount) with
    | Some x, Some y -> Some (Float.max x y)
    | (Some _ as d), None | None, (Some _ as d) -> d
    | None, None -> None
  in
  let tier = if rate a.tier >= rate b.tier then a.tier else b.tier in
  { base = a.base + b.base; tier; discount; region = a.region }

let valid t = t.base >= 0 && price t >= 0.0
""",
    """\
type tier = Bronze | Silver | Gold

val base : t -> int
val tier : t -> tier

val price : t -> float
(** The base price after the tier's rate and the discount, if any. *)
""",
)

#: Per kind, checks of its own functions (in a loop where `a`, `b` are samples).
BEHAVIOUR = {
    "record": """\
    assert (M.total [ a; b ] = M.score a + M.score b);
    assert (M.valid (M.heavier a b));
    assert (match M.validate a with Ok _ -> true | Error _ -> false)""",
    "variant": """\
    assert (M.score (M.advance a M.Draft) >= M.score a);
    assert (M.is_terminal (M.status a) || M.status (M.advance a M.Draft) = M.Draft);
    assert (M.valid (M.combine a b))""",
    "keyed": """\
    assert (M.score (M.combine a b) = M.score a + M.score b);
    assert (M.size (M.combine a b) >= M.size a);
    assert (M.lookup a "no-such-code" = None);
    assert (List.for_all (fun code -> M.lookup a code <> None) (M.codes a))""",
    "ranked": """\
    assert (M.top (n + 1) <> None);
    assert (String.length (M.leaderboard (n + 1)) > 0);
    assert (M.valid (M.combine a b))""",
    "ledger": """\
    let l = M.create 10 in
    M.post l { M.account = "stock"; amount = 5; memo = "count" };
    assert (M.balance l = 5);
    let loss = { M.account = "loss"; amount = -100; memo = "write-off" } in
    assert (M.try_post l loss = Error "loss");
    assert (M.balance l = 5);
    let count t = List.length (M.entries t) in
    assert (count (M.combine a b) = count a + count b)""",
    "pricing": """\
    assert (M.price a <= float_of_int (M.base a) +. 1e-9);
    let c = M.combine a b in
    assert (M.tier c = M.tier a || M.tier c = M.tier b);
    assert (M.base c = M.base a + M.base b)""",
}


def _upstream(m: _Module) -> str:
    """The helpers through which a module uses the modules of earlier layers."""
    deps = [d.capitalize() for d in m.deps if d != "registry"]
    if not deps:
        return (
            "(* A base module: no upstream module. *)\n\n"
            f"let upstream n = ((n * {m.consts[0]}) + {m.consts[2]}) mod 997\n"
            f'let upstream_label n = "{m.stem}-" ^ string_of_int (n mod {m.consts[1]})\n'
        )
    parts = [f"{d}.score ({d}.make {f'(n + {i})' if i else 'n'})" for i, d in enumerate(deps)]
    uses = ", ".join(deps)
    return (
        f"(* Built on {uses}. *)\n\n"
        "let upstream n =\n  (" + "\n   + ".join(parts) + ") mod 997\n\n"
        f"let upstream_label n = {deps[0]}.describe ({deps[0]}.make n)\n"
    )


def _module_text(m: _Module) -> tuple[str, str | None]:
    body, sig = TEMPLATES[m.kind]
    a, b, c = m.consts
    first = next((d.capitalize() for d in m.deps if d != "registry"), "")
    values = {"stem": m.stem, "a": str(a), "b": str(b), "c": str(c), "first": first}
    title = m.stem.replace("_", " ")
    header = f"(* {m.name}: {title} records of the inventory (layer {m.layer}). *)\n\n"
    ml = header + _upstream(m) + "\n" + Template(body).substitute(values)
    if not m.mli:
        return ml, None
    mli = (
        f"(** {title.capitalize()}s of the inventory. *)\n\n"
        + UNIFORM_SIG
        + "\n"
        + Template(sig).substitute(values)
    )
    return ml, mli


def _plan(modules: int, seed: int) -> list[_Module]:
    """The library's modules, layer by layer, with their upstream modules."""
    if modules < 8:
        raise ValueError("at least 8 modules")
    rng = random.Random(seed)
    stems = [
        NOUNS[i % len(NOUNS)] + (f"_{i // len(NOUNS) + 1}" if i >= len(NOUNS) else "")
        for i in range(modules - 1)
    ]
    layers = max(3, round((modules - 1) ** 0.5))
    base = max(3, (modules - 1) // (layers + 1))
    plan: list[_Module] = []
    by_layer: list[list[_Module]] = [[]]
    rest = modules - 1 - base
    sizes = [
        rest // (layers - 1) + (1 if i < rest % (layers - 1) else 0) for i in range(layers - 1)
    ]
    kinds = list(BASE_KINDS)
    rng.shuffle(kinds)
    for i in range(base):
        m = _Module(stems[i], 0, kinds[i % len(kinds)])
        by_layer[0].append(m)
        plan.append(m)
    registry_users = 0
    at = base
    for layer, size in enumerate(sizes, start=1):
        by_layer.append([])
        kinds = list(KINDS)
        rng.shuffle(kinds)
        earlier = [m for ms in by_layer[: layer - 1] for m in ms]
        for j in range(size):
            kind = kinds[j % len(kinds)]
            deps = [rng.choice(by_layer[layer - 1]).stem]
            for extra in rng.sample(earlier, min(len(earlier), rng.randint(0, 2))):
                if extra.stem not in deps:
                    deps.append(extra.stem)
            if kind == "keyed":
                deps.append("registry")
                registry_users += 1
            m = _Module(stems[at], layer, kind, deps)
            at += 1
            by_layer[layer].append(m)
            plan.append(m)
    for m in plan:
        m.consts = (rng.randint(2, 9), rng.randint(5, 17), rng.randint(3, 13))
        m.mli = rng.random() < 0.35
    return plan


def make_project(dest: Path, modules: int = 30, seed: int = 0) -> Path:
    """Write the project under `dest` (replaced if it exists); `dest`."""
    plan = _plan(modules, seed)
    if dest.exists():
        shutil.rmtree(dest)
    files: dict[str, str] = {
        "dune-project": "(lang dune 2.9)\n",
        "lib/dune": f"(library\n (name {LIBRARY}))\n",
        "lib/registry.ml": REGISTRY_ML,
        "lib/registry.mli": REGISTRY_MLI,
    }
    for m in plan:
        ml, mli = _module_text(m)
        files[f"lib/{m.stem}.ml"] = ml
        if mli is not None:
            files[f"lib/{m.stem}.mli"] = mli
    top = [m for m in plan if m.layer == plan[-1].layer]
    files.update(_reporting(top))
    files.update(_tests(plan))
    for rel, text in files.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    return dest


# --- the second library, the executable and the tests ---------------------------------


def _reporting(top: list[_Module]) -> dict[str, str]:
    rows = "\n".join(
        f'    row "{m.name}" {m.name}.score {m.name}.valid ({m.name}.make n);' for m in top
    )
    summary = f"""\
(* Summary: one line per top-level inventory figure, for reports and the CLI. *)

open {LIBRARY.capitalize()}

type line = {{ name : string; score : int; valid : bool }}

let row name score valid sample = {{ name; score = score sample; valid = valid sample }}

let snapshot n =
  [
{rows}
  ]

let total lines = List.fold_left (fun acc l -> acc + l.score) 0 lines
let failing lines = List.filter (fun l -> not l.valid) lines

let best lines =
  match List.sort (fun a b -> compare b.score a.score) lines with
  | [] -> None
  | first :: _ -> Some first

let render lines =
  let width = List.fold_left (fun w l -> max w (String.length l.name)) 4 lines in
  let line l =
    Printf.sprintf "%-*s %8d %s" width l.name l.score (if l.valid then "ok" else "INVALID")
  in
  let footer = Printf.sprintf "%-*s %8d" width "total" (total lines) in
  String.concat "\\n" (List.map line lines @ [ footer ])
"""
    csv = """\
(* Csv_export: RFC 4180 quoting of summary lines. *)

let needs_quotes field =
  String.exists (fun c -> c = ',' || c = '"' || c = '\\n' || c = '\\r') field

let quote field =
  if needs_quotes field then
    "\\"" ^ String.concat "\\"\\"" (String.split_on_char '"' field) ^ "\\""
  else field

let row fields = String.concat "," (List.map quote fields)

let of_lines (lines : Summary.line list) =
  let header = row [ "name"; "score"; "valid" ] in
  let body =
    List.map
      (fun (l : Summary.line) -> row [ l.name; string_of_int l.score; string_of_bool l.valid ])
      lines
  in
  String.concat "\\n" (header :: body) ^ "\\n"
"""
    main = """\
(* inventory_report [N]: the summary of the Nth sample, as a table or CSV. *)

let () =
  let args = List.tl (Array.to_list Sys.argv) in
  let csv = List.mem "--csv" args in
  let n =
    match List.filter (fun a -> a <> "--csv") args with
    | [] -> 1
    | s :: _ -> ( match int_of_string_opt s with Some n -> n | None -> 1)
  in
  let lines = Reporting.Summary.snapshot n in
  if csv then print_string (Reporting.Csv_export.of_lines lines)
  else print_endline (Reporting.Summary.render lines);
  if Reporting.Summary.failing lines <> [] then exit 1
"""
    return {
        "reporting/dune": f"(library\n (name reporting)\n (libraries {LIBRARY}))\n",
        "reporting/summary.ml": summary,
        "reporting/csv_export.ml": csv,
        "bin/dune": f"(executable\n (name inventory_report)\n (libraries {LIBRARY} reporting))\n",
        "bin/inventory_report.ml": main,
    }


def _tests(plan: list[_Module]) -> dict[str, str]:
    lib = LIBRARY.capitalize()
    items = "\n".join(f'    ("{m.name}", (module {m.name} : ITEM));' for m in plan)
    test_items = f"""\
(* Every module of the inventory: samples are valid, scores non-negative, combine closed. *)

open {lib}

module type ITEM = sig
  type t

  val make : int -> t
  val score : t -> int
  val describe : t -> string
  val combine : t -> t -> t
  val valid : t -> bool
end

let items : (string * (module ITEM)) list =
  [
{items}
  ]

let check (name, (module M : ITEM)) =
  for n = 0 to 7 do
    let a = M.make n and b = M.make (n + 1) in
    assert (M.score a >= 0);
    assert (M.valid a);
    assert (String.length (M.describe a) > 0);
    let c = M.combine a b in
    assert (M.valid c);
    assert (M.score c >= 0);
    if M.make n |> M.score <> M.score a then failwith (name ^ ": make is not deterministic")
  done

let () =
  List.iter check items;
  Printf.printf "%d modules checked\\n" (List.length items)
"""
    cases = []
    for m in plan:
        cases.append(
            f"let test_{m.stem} () =\n"
            f"  let module M = {m.name} in\n"
            "  for n = 0 to 5 do\n"
            "    let a = M.make n and b = M.make (n + 1) in\n"
            f"{BEHAVIOUR[m.kind]}\n"
            "  done\n"
        )
    calls = "\n".join(f'    ("{m.stem}", test_{m.stem});' for m in plan)
    test_behaviour = (
        "(* Each module's own functions. *)\n\n"
        f"open {lib}\n\n"
        "module Codes = Registry.Make (struct\n"
        "  type t = int\n\n"
        "  let compare = Int.compare\n"
        "  let to_string = string_of_int\n"
        "end)\n\n"
        "let test_registry () =\n"
        '  let r = Codes.(empty |> add 1 "one" |> add 2 "two" |> add 1 "uno") in\n'
        "  assert (Codes.cardinal r = 2);\n"
        '  assert (Codes.find_opt 1 r = Some "uno");\n'
        "  assert (Codes.find_opt 3 r = None);\n"
        '  assert (Codes.describe (fun s -> s) r = "{1=uno, 2=two}");\n'
        '  let u = Codes.union ( ^ ) r (Codes.add 2 "!" Codes.empty) in\n'
        '  assert (Codes.find_opt 2 u = Some "two!")\n\n' + "\n".join(cases) + "\nlet () =\n"
        "  let tests =\n"
        '    ("registry", test_registry)\n'
        "    :: [\n"
        f"{calls}\n"
        "       ]\n"
        "  in\n"
        "  List.iter (fun (_, run) -> run ()) tests;\n"
        '  Printf.printf "%d behaviour tests passed\\n" (List.length tests)\n'
    )
    test_reporting = """\
(* The reporting library over the inventory. *)

let () =
  let open Reporting in
  let lines = Summary.snapshot 3 in
  assert (lines <> []);
  assert (Summary.failing lines = []);
  let sum = List.fold_left (fun acc (l : Summary.line) -> acc + l.score) 0 lines in
  assert (Summary.total lines = sum);
  assert (Summary.best lines <> None);
  assert (Csv_export.quote "plain" = "plain");
  assert (Csv_export.quote "a,b" = "\\"a,b\\"");
  assert (Csv_export.quote "say \\"hi\\"" = "\\"say \\"\\"hi\\"\\"\\"");
  let csv = Csv_export.of_lines lines in
  assert (List.length (String.split_on_char '\\n' csv) = List.length lines + 2);
  print_endline (Summary.render lines)
"""
    return {
        "test/dune": (
            "(tests\n (names test_items test_behaviour test_reporting)\n"
            f" (libraries {LIBRARY} reporting))\n"
        ),
        "test/test_items.ml": test_items,
        "test/test_behaviour.ml": test_behaviour,
        "test/test_reporting.ml": test_reporting,
    }


# --- edits ------------------------------------------------------------------------------

_REF = re.compile(r"\b([A-Z][a-z0-9_]*)\.")
_SCORE = "\nlet score t =\n"


def library_modules(root: Path) -> dict[str, Path]:
    """The library's modules by name (`Stock_level`), their `.ml` files."""
    return {p.stem.capitalize(): p for p in sorted((root / "lib").glob("*.ml"))}


def _layers(root: Path) -> dict[str, int]:
    """Each library module's depth in the dependency DAG (0: uses no other module)."""
    files = library_modules(root)
    uses = {
        name: {u for u in _REF.findall(path.read_text("utf-8")) if u in files and u != name}
        for name, path in files.items()
    }
    depth: dict[str, int] = {}

    def of(name: str) -> int:
        if name not in depth:
            depth[name] = 1 + max((of(u) for u in uses[name]), default=-1)
        return depth[name]

    for name in files:
        of(name)
    return depth


def edit_target(root: Path, interface: bool = False) -> str:
    """The module the edits change: one of the middle layer, with an `.mli` or without
    (as asked; from the nearest layer that has one)."""
    depth = _layers(root)
    middle = (max(depth.values()) + 1) // 2
    files = library_modules(root)
    candidates = sorted(
        (files[n].with_suffix(".mli").exists() != interface, abs(d - middle), d, n)
        for n, d in depth.items()
        if _SCORE in files[n].read_text("utf-8")
    )
    return files[candidates[0][-1]].relative_to(root).as_posix()


def _edit_score(root: Path, k: int, bound: str, interface: bool) -> tuple[str, str]:
    rel = edit_target(root, interface)
    text = (root / rel).read_text("utf-8")
    check = f"let revision = ref {k} in\n  assert (!revision >= {bound});"
    if k % 2:  # one line less: what follows moves, as it does between real candidates
        check = check.replace("\n  ", " ")
    return rel, text.replace(_SCORE, f"{_SCORE}  {check}\n", 1)


def one_function_edit(root: Path, k: int, interface: bool = False) -> tuple[str, str]:
    """(path, text) of a middle-layer module (without an `.mli`, unless `interface`) with
    its `score` changed but still correct: it checks a revision number `k`, so the text
    differs with each `k`.

    The check takes two lines for an even `k`, one for an odd one. Without an
    `.mli`, the module's `.cmi` records the lines of its definitions: successive
    `k` change it, and its dependents recompile, as between real candidates (whose
    typing differs, which changes the `.cmi` too); even `k` alone leave it the same
    from one check to the next, and dune cuts the rebuild off after the module."""
    return _edit_score(root, k, "0", interface)


def type_error_edit(root: Path, k: int, interface: bool = False) -> tuple[str, str]:
    """(path, text) of the same module with a type error in `score` (an int to a float)."""
    return _edit_score(root, k, "0.5", interface)


def source_counts(root: Path) -> tuple[int, int]:
    sources = [
        p for p in root.rglob("*") if p.suffix in (".ml", ".mli") and "_build" not in p.parts
    ]
    return len(library_modules(root)), sum(p.read_text("utf-8").count("\n") for p in sources)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument("--modules", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    root = make_project(args.dest, args.modules, args.seed)
    modules, lines = source_counts(root)
    depth = _layers(root)
    print(f"{root}: library {LIBRARY}: {modules} modules in {max(depth.values()) + 1} layers")
    print(f"{lines} lines of OCaml (.ml and .mli, library, reporting, executable and tests)")
    print(f"edits change: {edit_target(root)}")


if __name__ == "__main__":
    main()
