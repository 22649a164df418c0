"""Name resolution on the fixture projects (`ocaml_ai_ls.context.resolve`).

Each test takes a use found in a file's summary at a 1-based line, builds its
`Location` the way the slicer does, and checks the definitions it resolves to
(file relative to the project, 1-based line). `tasks.toml` is the oracle where
a task lists the same definition.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

import pytest

from ocaml_ai_ls.context.index import WorkspaceIndex
from ocaml_ai_ls.context.resolve import Found, Location, Resolver, UnitScope, Wrapper, location
from ocaml_ai_ls.context.summary import RefKind

PROJECTS = Path(__file__).resolve().parent / "fixtures" / "projects"

V, C, F, T, M = RefKind.VALUE, RefKind.CONSTRUCTOR, RefKind.FIELD, RefKind.TYPE, RefKind.MODULE


@cache
def index_of(project: str) -> WorkspaceIndex:
    index = WorkspaceIndex(PROJECTS / project)
    index.scan()
    return index


@cache
def task_needs() -> dict[str, set[str]]:
    """Task id → every `FILE:LINE` alternative of its needs."""
    data = tomllib.loads((PROJECTS / "tasks.toml").read_text(encoding="utf-8"))
    out: dict[str, set[str]] = {}
    for task in data["task"]:
        places = out.setdefault(task["id"], set())
        for need in task["needs"]:
            for alt in need.split("|"):
                rel, line, _name = alt.split(":", 2)
                places.add(f"{rel}:{line}")
    return out


def at(project: str, rel: str, line: int) -> tuple[WorkspaceIndex, Location]:
    """The index of `project` and the location of a use at 1-based `line` of `rel`."""
    index = index_of(project)
    path = PROJECTS / project / rel
    summary = index.summary(path)
    assert summary is not None, rel
    return index, location(index.files[path], summary, line - 1)


def places(found: list[Found]) -> list[str]:
    return [f"{f.file.rel}:{f.definition.line + 1}" for f in found]


def resolve_use(project: str, rel: str, line: int, path: str, kind: RefKind = V) -> list[str]:
    """Resolve a use of `path` that the file's summary records at `line`."""
    index, loc = at(project, rel, line)
    parts = tuple(path.split("."))
    assert loc.file.summary is not None
    recorded = {(r.path, r.kind, r.line) for r in loc.file.summary.references}
    assert (parts, kind, line - 1) in recorded, f"no {kind} use of {path} at {rel}:{line}"
    return places(Resolver(index).resolve(parts, kind, loc))


def resolve_path(project: str, rel: str, line: int, path: str, kind: RefKind = V) -> list[str]:
    """Resolve `path` as if it were written at `line` (not necessarily written there)."""
    index, loc = at(project, rel, line)
    return places(Resolver(index).resolve(tuple(path.split(".")), kind, loc))


def module_definitions(project: str, rel: str, line: int, path: str) -> list[str]:
    index, loc = at(project, rel, line)
    return places(Resolver(index).module_definitions(tuple(path.split(".")), loc))


# --------------------------------------------------------------------------- wrapped


def test_wrapper_path_from_the_executable() -> None:
    # `Geo.Shape.area` from bin/: the wrapper of `(library (name geo))`, then its module
    assert resolve_path("wrapped", "bin/main.ml", 21, "Geo.Shape.area") == ["lib/shape.mli:26"]
    assert "lib/shape.mli:26" in task_needs()["wrapped-03"]
    assert resolve_use("wrapped", "bin/main.ml", 6, "Geo.Shape.circle") == ["lib/shape.mli:21"]
    assert resolve_use("wrapped", "bin/main.ml", 6, "Geo.Vec.make") == ["lib/vec.mli:12"]
    assert resolve_use("wrapped", "bin/main.ml", 6, "Geo.Color.Red", C) == ["lib/color.ml:5"]
    assert resolve_use("wrapped", "bin/main.ml", 12, "Geo.Shape.Polygon", C) == ["lib/shape.mli:7"]


def test_wrapper_and_library_modules_as_modules() -> None:
    index, loc = at("wrapped", "bin/main.ml", 21)
    resolver = Resolver(index)
    geo = index.library("geo")
    assert geo is not None
    assert resolver.module(("Geo",), loc, 0) == [Wrapper(geo)]
    shape = index.unit_of(PROJECTS / "wrapped" / "lib" / "shape.ml")
    assert shape is not None
    assert resolver.module(("Geo", "Shape"), loc, 0) == [UnitScope(shape)]
    assert resolver.module(("G", "Shape"), loc, 0) == [UnitScope(shape)]
    # a wrapped library's modules are not visible unqualified from a stanza that
    # declares it; util is unwrapped, so it has no `Util` module
    assert resolver.module(("Util",), loc, 0) == []
    assert resolve_path("wrapped", "bin/main.ml", 32, "Util.Listx.max_by") == []


def test_alias_of_the_wrapper() -> None:
    # `module G = Geo` at line 3, then `G.Vec.add`
    assert resolve_use("wrapped", "bin/main.ml", 29, "G.Vec.add") == ["lib/vec.mli:15"]
    assert resolve_use("wrapped", "bin/main.ml", 29, "G.Vec.scale") == ["lib/vec.mli:20"]
    assert resolve_use("wrapped", "bin/main.ml", 29, "G.Shape.centroid") == ["lib/shape.mli:33"]
    assert module_definitions("wrapped", "bin/main.ml", 29, "G.Vec") == ["bin/main.ml:3"]
    assert {"bin/main.ml:3", "lib/vec.mli:15", "lib/vec.mli:20"} <= task_needs()["wrapped-20"]


def test_open_of_the_wrapper() -> None:
    # bin/cli.ml does `open Geo`
    assert resolve_use("wrapped", "bin/cli.ml", 21, "Vec.make") == ["lib/vec.mli:12"]
    assert resolve_use("wrapped", "bin/cli.ml", 13, "Vec.zero") == ["lib/vec.mli:10"]
    assert resolve_use("wrapped", "bin/cli.ml", 10, "Vec.t", T) == ["lib/vec.mli:4"]


def test_unqualified_module_inside_the_library() -> None:
    assert resolve_use("wrapped", "lib/shape.ml", 58, "Vec.add") == ["lib/vec.mli:15"]
    assert resolve_use("wrapped", "lib/shape.ml", 67, "Vec.make") == ["lib/vec.mli:12"]
    assert resolve_use("wrapped", "lib/scene.ml", 37, "Shape.translate") == ["lib/shape.mli:31"]
    assert "lib/vec.mli:15" in task_needs()["wrapped-09"]


def test_interface_is_preferred_over_the_implementation() -> None:
    # vec.ml:12 and shape.ml:36 define the same values: only the .mli is returned
    assert resolve_use("wrapped", "lib/shape.ml", 58, "Vec.add") == ["lib/vec.mli:15"]
    assert resolve_use("wrapped", "lib/scene.ml", 20, "Shape.area") == ["lib/shape.mli:26"]
    assert resolve_use("wrapped", "lib/scene.ml", 20, "Shape.Degenerate", C) == ["lib/shape.mli:17"]
    index, loc = at("wrapped", "lib/shape.ml", 58)
    (vec,) = Resolver(index).module(("Vec",), loc, 0)
    assert isinstance(vec, UnitScope)
    assert [f.rel for f in vec.unit.files()] == ["lib/vec.mli", "lib/vec.ml"]


def test_value_in_the_unwrapped_library() -> None:
    assert resolve_use("wrapped", "bin/main.ml", 32, "Listx.max_by") == ["util/listx.ml:14"]
    assert resolve_use("wrapped", "bin/main.ml", 21, "Strutil.fixed") == ["util/strutil.ml:14"]
    assert resolve_use("wrapped", "bin/cli.ml", 20, "Strutil.split_on") == ["util/strutil.ml:17"]
    # from inside the wrapped library, which depends on util
    assert resolve_use("wrapped", "lib/shape.ml", 53, "Listx.sum_by") == ["util/listx.ml:11"]
    assert "util/listx.ml:14" in task_needs()["wrapped-02"]
    assert "util/strutil.ml:17" in task_needs()["wrapped-07"]


def test_own_definitions_and_stdlib() -> None:
    assert resolve_use("wrapped", "lib/shape.ml", 53, "edges") == ["lib/shape.ml:25"]
    assert resolve_use("wrapped", "lib/shape.ml", 58, "Circle", C) == ["lib/shape.ml:4"]
    assert resolve_use("wrapped", "bin/main.ml", 32, "shapes", F) == ["lib/scene.mli:6"]
    # the stdlib is not in the index: its names resolve to nothing
    assert resolve_use("wrapped", "bin/main.ml", 26, "List.map") == []


# --------------------------------------------------------------------------- functors


def test_value_of_a_functor_instance() -> None:
    # `module Int_store = Kv.Make (Keys.Int_key)`; Make's result is `S with type key = K.t`
    assert resolve_path("functors", "lib/instances.ml", 25, "Int_store.add") == ["lib/kv.mli:25"]
    assert resolve_path("functors", "lib/instances.ml", 25, "Int_store.Missing", C) == [
        "lib/kv.mli:20"
    ]
    # `module Sku_store = Store.Instances.Int_store` in another stanza
    assert resolve_use("functors", "bin/inventory.ml", 37, "Sku_store.add") == ["lib/kv.mli:25"]
    assert resolve_use("functors", "bin/inventory.ml", 37, "By_name.add") == ["lib/kv.mli:25"]
    assert "lib/kv.mli:25" in task_needs()["functors-06"]


def test_alias_of_a_functor_instance() -> None:
    # bin/main.ml: `open Store.Instances`, where `module IS = Int_store`
    assert resolve_use("functors", "bin/main.ml", 23, "IS.add") == ["lib/kv.mli:25"]
    assert resolve_use("functors", "bin/main.ml", 24, "IS.empty") == ["lib/kv.mli:22"]
    assert resolve_use("functors", "bin/main.ml", 26, "IS.dump") == ["lib/kv.mli:47"]


def test_module_definitions_a_path_goes_through() -> None:
    assert module_definitions("functors", "bin/main.ml", 23, "IS") == [
        "lib/instances.ml:25",  # module IS = Int_store
        "lib/instances.ml:3",  # module Int_store = Kv.Make (Keys.Int_key)
        "lib/kv.mli:51",  # module Make (K : KEY) : S with type key = K.t
        "lib/keys.ml:4",  # module Int_key = struct
    ]
    assert {"lib/instances.ml:25", "lib/instances.ml:3"} <= task_needs()["functors-04"]
    assert module_definitions("functors", "bin/inventory.ml", 37, "By_name") == [
        "bin/inventory.ml:26",
        "bin/inventory.ml:3",  # module Kv = Store.Kv
        "lib/kv.mli:51",
        "bin/inventory.ml:18",  # module Name_key : Kv.KEY ... = struct
    ]
    # a compilation unit is no module definition
    assert module_definitions("functors", "bin/main.ml", 23, "Store.Instances") == []


def test_include_of_a_functor_instance() -> None:
    # module Counter = struct include Int_store ... let incr k m = add k (... find k m) m
    assert resolve_use("functors", "lib/instances.ml", 17, "add") == ["lib/kv.mli:25"]
    assert resolve_use("functors", "lib/instances.ml", 17, "find") == ["lib/kv.mli:27"]
    assert resolve_use("functors", "lib/instances.ml", 19, "fold") == ["lib/kv.mli:44"]
    # from outside: Counter's own values and those it includes
    assert resolve_use("functors", "bin/main.ml", 7, "Counter.incr") == ["lib/instances.ml:17"]
    assert resolve_use("functors", "bin/main.ml", 7, "Counter.empty") == ["lib/kv.mli:22"]
    assert module_definitions("functors", "bin/main.ml", 7, "Counter") == ["lib/instances.ml:13"]
    assert {"lib/kv.mli:25", "lib/kv.mli:27", "lib/kv.mli:44"} <= task_needs()["functors-14"]


def test_nested_module_path() -> None:
    assert resolve_path("functors", "lib/instances.ml", 25, "Formats.Codec.Json.encode") == [
        "lib/formats.ml:20"
    ]
    assert resolve_path("functors", "bin/main.ml", 23, "Store.Formats.Codec.Json.encode") == [
        "lib/formats.ml:20"
    ]
    assert resolve_path("functors", "lib/instances.ml", 25, "Formats.Codec.Csv.encode") == [
        "lib/formats.ml:42"
    ]
    assert resolve_path("functors", "lib/instances.ml", 25, "Formats.Tsv.encode") == [
        "lib/formats.ml:56"
    ]
    # through `module Codec = Store.Formats.Codec`
    assert resolve_use("functors", "bin/inventory.ml", 60, "Codec.Json.encode") == [
        "lib/formats.ml:20"
    ]
    assert resolve_use("functors", "bin/inventory.ml", 64, "Codec.Csv.encode") == [
        "lib/formats.ml:42"
    ]
    # through `let open S.Formats in`
    assert resolve_use("functors", "bin/main.ml", 51, "Codec.Json.encode") == ["lib/formats.ml:20"]
    assert resolve_use("functors", "bin/main.ml", 51, "Codec.Json.Arr", C) == ["lib/formats.ml:14"]
    assert module_definitions("functors", "bin/main.ml", 51, "Codec.Json") == [
        "lib/formats.ml:5",
        "lib/formats.ml:7",
    ]
    assert {"lib/formats.ml:20", "lib/formats.ml:14"} <= task_needs()["functors-21"]


def test_local_module() -> None:
    # let module T = S.Formats.Tsv in T.encode ...
    assert resolve_use("functors", "bin/main.ml", 45, "T.encode") == ["lib/formats.ml:56"]
    # Tsv gets decode_row from `include Codec.Csv`
    assert resolve_use("functors", "bin/main.ml", 46, "T.decode_row") == ["lib/formats.ml:44"]
    assert module_definitions("functors", "bin/main.ml", 45, "T") == [
        "bin/main.ml:44",
        "bin/main.ml:3",  # module S = Store
        "lib/formats.ml:49",
    ]
    assert task_needs()["functors-05"] >= {
        "bin/main.ml:3",
        "lib/formats.ml:49",
        "lib/formats.ml:56",
        "lib/formats.ml:44",
    }
    # T is not visible past the expression of its `let module`
    assert resolve_path("functors", "bin/main.ml", 51, "T.encode") == []


def test_local_open_of_a_functor_instance() -> None:
    # Name_store.(empty |> add "Alice" 30 |> ...)
    assert resolve_use("functors", "bin/main.ml", 19, "add") == ["lib/kv.mli:25"]
    assert resolve_use("functors", "bin/main.ml", 19, "empty") == ["lib/kv.mli:22"]


# --------------------------------------------------------------------------- opens

OPENS = [
    # open Level; open Log: the later open shadows the earlier one
    ("opens-18", "bin/app.ml", 10, "default", V, "lib/log.ml:10"),
    ("opens-17", "bin/app.ml", 7, "level", V, "lib/log.ml:7"),
    ("opens-18", "bin/app.ml", 10, "level", V, "lib/log.ml:7"),
    (None, "bin/app.ml", 43, "to_string", V, "lib/log.ml:22"),
    ("opens-13", "bin/report.ml", 24, "default", V, "lib/defaults.ml:7"),
    ("opens-10", "bin/report.ml", 10, "name", V, "lib/defaults.ml:9"),
    # a later top-level `let` shadows an opened name, from its line on
    ("opens-10", "bin/report.ml", 10, "output", V, "lib/defaults.ml:14"),
    ("opens-11", "bin/report.ml", 15, "output", V, "bin/report.ml:13"),
    ("opens-06", "lib/units.ml", 9, "size", V, "lib/units.ml:6"),
    ("opens-06", "lib/units.ml", 9, "output", V, "lib/defaults.ml:14"),
    ("opens-02", "lib/log.ml", 19, "to_string", V, "lib/level.ml:21"),
    ("opens-01", "lib/log.ml", 15, "compare", V, "lib/level.ml:37"),
    # a non-recursive let does not see itself: the included / opened one
    ("opens-04", "lib/defaults.ml", 7, "default", V, "lib/config.ml:19"),
    ("opens-07", "lib/units.ml", 6, "size", V, "lib/defaults.ml:12"),
    # let open M in / let open! M in: the innermost open first
    ("opens-20", "bin/app.ml", 19, "to_string", V, "lib/theme.ml:19"),
    ("opens-20", "bin/app.ml", 19, "of_level", V, "lib/theme.ml:13"),
    ("opens-20", "bin/app.ml", 19, "name", V, "lib/palette.ml:10"),
    ("opens-22", "bin/app.ml", 28, "default", V, "lib/theme.ml:10"),
    ("opens-22", "bin/app.ml", 32, "all", V, "lib/palette.ml:18"),
    # M.( ... )
    ("opens-21", "bin/app.ml", 21, "name", V, "lib/palette.ml:10"),
    ("opens-21", "bin/app.ml", 21, "all", V, "lib/palette.ml:18"),
    # unqualified constructors and fields through an open
    ("opens-19", "bin/app.ml", 13, "Error", C, "lib/level.ml:8"),
    ("opens-19", "bin/app.ml", 13, "Info", C, "lib/level.ml:6"),
    ("opens-19", "bin/app.ml", 13, "Warn", C, "lib/level.ml:7"),
    ("opens-17", "bin/app.ml", 7, "Debug", C, "lib/level.ml:5"),
    ("opens-22", "bin/app.ml", 29, "Red", C, "lib/theme.ml:6"),
    ("opens-22", "bin/app.ml", 30, "Amber", C, "lib/theme.ml:7"),
    ("opens-09", "bin/report.ml", 7, "name", F, "lib/config.ml:5"),
    ("opens-17", "bin/app.ml", 7, "threshold", F, "lib/config.ml:15"),
    ("opens-15", "bin/report.ml", 35, "t", T, "lib/config.ml:11"),
]


@pytest.mark.parametrize(("task", "rel", "line", "name", "kind", "expected"), OPENS)
def test_opens_and_shadowing(
    task: str | None, rel: str, line: int, name: str, kind: RefKind, expected: str
) -> None:
    assert resolve_use("opens", rel, line, name, kind) == [expected]
    if task is not None:
        assert expected in task_needs()[task]


def test_qualified_names_ignore_opens() -> None:
    assert resolve_use("opens", "bin/app.ml", 10, "Level.to_string") == ["lib/level.ml:21"]
    assert resolve_use("opens", "bin/report.ml", 40, "Config.name") == ["lib/config.ml:21"]
    assert resolve_use("opens", "bin/report.ml", 19, "Config.size") == ["lib/config.ml:24"]
    assert resolve_use("opens", "lib/theme.ml", 26, "Palette.Red", C) == ["lib/palette.ml:4"]


# --------------------------------------------------------------------------- edge cases


def tmp_project(root: Path, files: dict[str, str]) -> WorkspaceIndex:
    for rel, text in {"lib/dune": "(library (name l) (wrapped false))\n", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    index = WorkspaceIndex(root)
    index.scan()
    return index


def tmp_resolve(index: WorkspaceIndex, rel: str, line: int, name: str) -> list[str]:
    path = index.root / rel
    summary = index.summary(path)
    assert summary is not None
    loc = location(index.files[path], summary, line - 1)
    return places(Resolver(index).resolve((name,), V, loc))


def test_alias_cycle_terminates(tmp_path: Path) -> None:
    index = tmp_project(
        tmp_path,
        {
            "lib/a.ml": "module X = B.Y\n",
            "lib/b.ml": "module Y = A.X\n",
            "lib/c.ml": "let v = A.X.v\n",
        },
    )
    path = tmp_path / "lib" / "c.ml"
    summary = index.summary(path)
    assert summary is not None
    loc = location(index.files[path], summary, 0)
    assert Resolver(index).resolve(("A", "X", "v"), V, loc) == []


def test_recursive_let_sees_itself(tmp_path: Path) -> None:
    index = tmp_project(
        tmp_path,
        {
            "lib/m.ml": "let count = 0\n",
            "lib/u.ml": "open M\nlet rec count n = if n = 0 then 0 else count (n - 1)\n",
        },
    )
    assert tmp_resolve(index, "lib/u.ml", 2, "count") == ["lib/u.ml:2"]


def test_mutually_recursive_let_sees_later_bindings(tmp_path: Path) -> None:
    index = tmp_project(
        tmp_path,
        {
            "lib/m.ml": "let odd = 0\n",
            "lib/u.ml": (
                "open M\n"
                "let rec even n = n = 0 || odd (n - 1)\n"
                "and odd n = n <> 0 && even (n - 1)\n"
            ),
        },
    )
    assert tmp_resolve(index, "lib/u.ml", 3, "even") == ["lib/u.ml:2"]
    assert tmp_resolve(index, "lib/u.ml", 2, "odd") == ["lib/u.ml:3"]


def test_local_open_ends_with_its_expression(tmp_path: Path) -> None:
    index = tmp_project(
        tmp_path,
        {
            "lib/m.ml": "let odd = 0\n",
            "lib/z.ml": "let odd = 5\n",
            "lib/v.ml": "open M\nlet f () =\n  let _ = Z.(odd) in\n  odd\n",
        },
    )
    assert tmp_resolve(index, "lib/v.ml", 3, "odd") == ["lib/z.ml:1"]  # inside Z.( )
    assert tmp_resolve(index, "lib/v.ml", 4, "odd") == ["lib/m.ml:1"]  # after it
