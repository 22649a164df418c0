"""The workspace index: discovery, module structure, bad input, freshness and memory
(`ocaml_ai_ls.context.index`)."""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from lsprotocol import types

from ocaml_ai_ls.context.index import MAX_SOURCE_BYTES, WorkspaceIndex, read_source
from ocaml_ai_ls.context.parsing import SourceKind, parse
from ocaml_ai_ls.context.summary import ChunkCache
from ocaml_ai_ls.documents import Document, DocumentStore
from ocaml_ai_ls.uris import path_to_uri

LOGGER = "ocaml_ai_ls.context.index"


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def scanned(root: Path, documents: DocumentStore | None = None) -> WorkspaceIndex:
    index = WorkspaceIndex(root, documents)
    index.scan()
    return index


def rels(index: WorkspaceIndex) -> list[str]:
    return sorted(index.rel(p) for p in index.files)


def names(index: WorkspaceIndex, path: Path) -> list[str]:
    summary = index.summary(path)
    assert summary is not None, path
    return [d.name for d in summary.definitions]


def definer_rels(index: WorkspaceIndex, name: str) -> list[str]:
    return sorted(s.rel for s in index.definers(name))


def user_rels(index: WorkspaceIndex, name: str) -> list[str]:
    return sorted(s.rel for s in index.users(name))


# --------------------------------------------------------------------------- module naming

PROJECT: dict[str, str | bytes] = {
    "dune-project": "(lang dune 2.9)\n",
    "lib/dune": "(library\n (name geo)\n (public_name my-geo)\n (libraries util))\n",
    "lib/foo_bar.ml": "let area = 1.0\n",
    "lib/foo_bar.mli": "val area : float\n",
    "lib/vec.ml": "let zero = 0\n",
    "util/dune": "(library (name util) (wrapped false))\n",
    "util/strutil.ml": "let pad s = s\n",
    "bin/dune": "(executable (name main) (libraries geo util))\n",
    "bin/main.ml": "let () = print_float Geo.Foo_bar.area\n",
}


def test_file_names_become_module_names(tmp_path: Path) -> None:
    write(tmp_path, PROJECT)
    index = scanned(tmp_path)
    ml = tmp_path / "lib" / "foo_bar.ml"
    unit = index.unit_of(ml)
    assert unit is not None
    assert unit.name == "Foo_bar"
    assert unit.dir == "lib"
    assert index.files[ml].module == "Foo_bar"
    assert index.files[tmp_path / "lib" / "foo_bar.mli"].module == "Foo_bar"
    assert [u.name for u in index.units_named("Vec")] == ["Vec"]
    assert index.units_named("foo_bar") == []
    assert index.units_named("Nope") == []


def test_ml_and_mli_are_one_unit_interface_first(tmp_path: Path) -> None:
    write(tmp_path, PROJECT)
    index = scanned(tmp_path)
    ml, mli = tmp_path / "lib" / "foo_bar.ml", tmp_path / "lib" / "foo_bar.mli"
    unit = index.unit_of(ml)
    assert unit is not None
    assert index.unit_of(mli) is unit
    assert index.units_named("Foo_bar") == [unit]
    assert unit.ml is index.files[ml] and unit.ml.kind is SourceKind.IMPLEMENTATION
    assert unit.mli is index.files[mli] and unit.mli.kind is SourceKind.INTERFACE
    assert unit.files() == [index.files[mli], index.files[ml]]
    vec = index.unit_of(tmp_path / "lib" / "vec.ml")
    assert vec is not None and vec.mli is None and vec.ml is not None
    assert vec.files() == [vec.ml]


def test_library_stanza_wrapping_and_public_name(tmp_path: Path) -> None:
    write(tmp_path, PROJECT)
    index = scanned(tmp_path)
    geo = index.library("geo")
    assert geo is not None
    assert geo.is_library and geo.kind == "library"
    assert geo.wrapped is True
    assert geo.wrapper == "Geo"
    assert geo.dir == "lib"
    assert geo.libraries == ("util",)
    assert (geo.start_line, geo.end_line) == (0, 3)
    assert index.library("my-geo") is geo
    unit = index.unit_of(tmp_path / "lib" / "foo_bar.ml")
    assert unit is not None and unit.stanza == geo
    assert index.stanza_of("lib", "Foo_bar") == geo
    assert index.library("nope") is None


def test_unwrapped_library_and_executable(tmp_path: Path) -> None:
    write(tmp_path, PROJECT)
    index = scanned(tmp_path)
    util = index.library("util")
    assert util is not None and util.wrapped is False and util.wrapper == "Util"
    strutil = index.unit_of(tmp_path / "util" / "strutil.ml")
    assert strutil is not None and strutil.name == "Strutil" and strutil.stanza == util
    main = index.unit_of(tmp_path / "bin" / "main.ml")
    assert main is not None and main.stanza is not None
    assert main.stanza.kind == "executable"
    assert main.stanza.name == "main"
    assert main.stanza.libraries == ("geo", "util")
    assert index.library("main") is None  # executables are not libraries
    assert index.dune_text(util) == ("util/dune", ["(library (name util) (wrapped false))"])


def test_modules_field_and_include_subdirs(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "src/dune": (
                "(include_subdirs unqualified)\n"
                "(library (name core) (modules a deep))\n"
                "(executable (name tool) (modules tool))\n"
            ),
            "src/a.ml": "let a = 1\n",
            "src/tool.ml": "let () = ()\n",
            "src/inner/deep.ml": "let d = 1\n",
            "plain/dune": "(library (name plain))\n",
            "plain/sub/orphan.ml": "let o = 1\n",
            "loose.ml": "let l = 1\n",
        },
    )
    index = scanned(tmp_path)
    core, plain = index.library("core"), index.library("plain")
    assert core is not None and plain is not None
    a = index.unit_of(tmp_path / "src" / "a.ml")
    tool = index.unit_of(tmp_path / "src" / "tool.ml")
    deep = index.unit_of(tmp_path / "src" / "inner" / "deep.ml")
    orphan = index.unit_of(tmp_path / "plain" / "sub" / "orphan.ml")
    loose = index.unit_of(tmp_path / "loose.ml")
    assert a is not None and a.stanza == core
    assert tool is not None and tool.stanza is not None and tool.stanza.name == "tool"
    assert deep is not None and deep.dir == "src/inner" and deep.stanza == core
    # without include_subdirs a subdirectory's module belongs to no stanza
    assert orphan is not None and orphan.stanza is None
    assert loose is not None and loose.dir == "" and loose.stanza is None


# --------------------------------------------------------------------------- skipping


def test_build_vcs_hidden_and_ignored_files_are_skipped(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "a.ml": "let a = 1\n",
            "lib/b.ml": "let b = 1\n",
            "lib/b.mli": "val b : int\n",
            "lib/dune": "(library (name keep))\n",
            "_build/default/lib/b.ml": "let b = 1\n",
            "_build/default/lib/dune": "(library (name from_build))\n",
            "_opam/lib/o.ml": "let o = 1\n",
            ".git/hooks/g.ml": "let g = 1\n",
            ".hidden/h.ml": "let h = 1\n",
            "node_modules/n.ml": "let n = 1\n",
            ".gitignore": "generated/\n*.gen.ml\n",
            "generated/x.ml": "let x = 1\n",
            "lib/c.gen.ml": "let c = 1\n",
            "sub/.gitignore": "gen/\n",
            "sub/gen/s.ml": "let s = 1\n",
            "sub/kept.ml": "let k = 1\n",
            "other/gen/o.ml": "let o = 1\n",  # sub/.gitignore does not apply here
            "README.md": "# readme\n",
            "lexer.mll": "rule token = parse eof { () }\n",
            "parser.mly": "%%\n",
            "notes.txt": "let x = 1\n",
            "lib/b.ml.orig": "let b = 1\n",
        },
    )
    index = WorkspaceIndex(tmp_path)
    walked = sorted(index.rel(p) for p in index.walk())
    expected = ["a.ml", "lib/b.ml", "lib/b.mli", "other/gen/o.ml", "sub/kept.ml"]
    assert walked == sorted([*expected, "lib/dune"])
    index.scan()
    assert rels(index) == expected
    assert sorted(index.dune) == ["lib"]
    assert index.library("keep") is not None
    assert index.library("from_build") is None
    assert definer_rels(index, "b") == ["lib/b.ml", "lib/b.mli"]
    assert definer_rels(index, "o") == ["other/gen/o.ml"]  # not _opam/lib/o.ml
    for name in ("g", "h", "n", "x", "c", "s"):
        assert definer_rels(index, name) == [], name


def test_nested_gitignore_patterns_are_relative_to_their_directory(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "sub/.gitignore": "/top.ml\ndeep/*.ml\n",
            "sub/top.ml": "let t = 1\n",
            "sub/inner/top.ml": "let t = 2\n",  # `/top.ml` is anchored to sub/
            "sub/deep/d.ml": "let d = 1\n",
            "top.ml": "let t = 3\n",  # not under sub/
        },
    )
    index = scanned(tmp_path)
    assert rels(index) == ["sub/inner/top.ml", "top.ml"]


def test_nested_gitignore_negation_overrides_parent(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".gitignore": "*.gen.ml\n",
            "sub/.gitignore": "!keep.gen.ml\n",
            "sub/keep.gen.ml": "let k = 1\n",
            "sub/drop.gen.ml": "let d = 1\n",
        },
    )
    index = scanned(tmp_path)
    assert rels(index) == ["sub/keep.gen.ml"]


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def index_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger=LOGGER)
    return caplog


def test_non_utf8_file_is_skipped_with_a_log_line(
    tmp_path: Path, index_log: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, {"latin.ml": b"let caf\xe9 = 1\n", "ok.ml": "let ok = 1\n"})
    index = scanned(tmp_path)
    bad = tmp_path / "latin.ml"
    assert index.summary(bad) is None
    assert index.files[bad].summary is None
    assert names(index, tmp_path / "ok.ml") == ["ok"]
    assert f"index: skipping {bad} (not UTF-8)" in index_log.messages


def test_binary_file_is_skipped_with_a_log_line(
    tmp_path: Path, index_log: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, {"blob.ml": b"let a = 1\n\x00\x01\x02", "ok.ml": "let ok = 1\n"})
    index = scanned(tmp_path)
    bad = tmp_path / "blob.ml"
    assert index.summary(bad) is None
    assert definer_rels(index, "a") == []
    assert definer_rels(index, "ok") == ["ok.ml"]
    assert f"index: skipping {bad} (binary)" in index_log.messages


def test_huge_generated_file_is_skipped_as_too_large(
    tmp_path: Path, index_log: pytest.LogCaptureFixture
) -> None:
    big = tmp_path / "generated.ml"
    big.write_bytes(b"let x = 1\n" * 1_000_000)  # 10 MB
    assert big.stat().st_size == 10_000_000 > MAX_SOURCE_BYTES
    write(tmp_path, {"ok.ml": "let ok = 1\n"})
    index = scanned(tmp_path)
    assert index.summary(big) is None
    assert definer_rels(index, "x") == []
    assert definer_rels(index, "ok") == ["ok.ml"]
    assert index.ready.is_set()
    expected = f"index: skipping {big} (larger than {MAX_SOURCE_BYTES} bytes)"
    assert expected in index_log.messages


def test_file_at_the_size_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "edge.ml"
    line = b"let x = 1\n"
    data = line * (MAX_SOURCE_BYTES // len(line))
    assert len(data) == MAX_SOURCE_BYTES
    path.write_bytes(data)
    assert read_source(path) == data
    path.write_bytes(data + b"\n")
    assert read_source(path) is None


def test_unreadable_path_is_skipped_with_a_log_line(
    tmp_path: Path, index_log: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "dir.ml"
    directory.mkdir()
    missing = tmp_path / "missing.ml"
    assert read_source(directory) is None
    assert read_source(missing) is None
    assert f"index: skipping {directory} ({os.strerror(errno.EISDIR)})" in index_log.messages
    assert f"index: skipping {missing} ({os.strerror(errno.ENOENT)})" in index_log.messages
    index = scanned(tmp_path)
    assert rels(index) == []  # a directory named like a source file is not a file


def test_syntax_error_mid_file_keeps_the_definitions_around_it(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "broken.ml": (
                "let before = 1\n"
                "\n"
                "let broken x = match x with | -> 3\n"
                "\n"
                "type after_t = A | B\n"
                "\n"
                "let after = 2\n"
            )
        },
    )
    index = scanned(tmp_path)
    path = tmp_path / "broken.ml"
    assert parse(path.read_bytes(), SourceKind.IMPLEMENTATION).root_node.has_error
    summary = index.summary(path)
    assert summary is not None
    lines = {d.name: d.line for d in summary.definitions}
    assert lines["before"] == 0
    assert lines["after_t"] == 4
    assert lines["A"] == 4
    assert lines["after"] == 6
    assert definer_rels(index, "after") == ["broken.ml"]


def test_directory_symlink_loop_is_not_followed(tmp_path: Path) -> None:
    write(tmp_path, {"a.ml": "let a = 1\n", "lib/b.ml": "let b = 1\n"})
    os.symlink(tmp_path, tmp_path / "loop")
    os.symlink(tmp_path / "lib", tmp_path / "lib" / "again")
    index = scanned(tmp_path)
    assert index.ready.is_set()
    assert rels(index) == ["a.ml", "lib/b.ml"]
    assert len(index.files) == 2
    assert definer_rels(index, "b") == ["lib/b.ml"]


def test_symlinked_file_must_resolve_inside_the_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    write(outside, {"secret.ml": "let secret = 1\n"})
    write(root, {"real.ml": "let real = 1\n"})
    os.symlink(outside / "secret.ml", root / "leak.ml")
    os.symlink(root / "real.ml", root / "alias.ml")
    index = scanned(root)
    assert rels(index) == ["alias.ml", "real.ml"]
    assert definer_rels(index, "secret") == []
    assert index.summary(root / "leak.ml") is None
    assert root / "leak.ml" not in index.files
    assert definer_rels(index, "real") == ["alias.ml", "real.ml"]


def test_file_deleted_while_indexing(tmp_path: Path, index_log: pytest.LogCaptureFixture) -> None:
    write(tmp_path, {f"m{i:02}.ml": f"let v{i:02} = {i}\n" for i in range(60)})
    victim = tmp_path / "m55.ml"
    calls: list[tuple[int, int]] = []

    def report(done: int, total: int) -> None:
        calls.append((done, total))
        if done == 50:
            victim.unlink()

    index = WorkspaceIndex(tmp_path)
    index.scan(report=report)
    assert calls == [(50, 60), (60, 60)]
    assert index.ready.is_set()
    assert index.summary(victim) is None
    assert definer_rels(index, "v55") == []
    assert definer_rels(index, "v54") == ["m54.ml"]
    assert definer_rels(index, "v59") == ["m59.ml"]
    assert f"index: skipping {victim} ({os.strerror(errno.ENOENT)})" in index_log.messages


def test_file_deleted_between_walk_and_read(tmp_path: Path) -> None:
    write(tmp_path, {"a.ml": "let a = 1\n", "b.ml": "let b = 1\n", "c.ml": "let c = 1\n"})

    class Racy(WorkspaceIndex):
        def walk(self) -> Iterator[Path]:
            yield from super().walk()
            (self.root / "b.ml").unlink()  # after it was listed, before it is read

    index = Racy(tmp_path)
    index.scan()
    assert index.ready.is_set()
    assert definer_rels(index, "a") == ["a.ml"]
    assert definer_rels(index, "b") == []
    assert definer_rels(index, "c") == ["c.ml"]


def test_unparsable_dune_file_gives_no_stanza(
    tmp_path: Path, index_log: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, {"lib/dune": "(library (name broken)\n", "lib/a.ml": "let a = 1\n"})
    index = scanned(tmp_path)
    unit = index.unit_of(tmp_path / "lib" / "a.ml")
    assert unit is not None and unit.stanza is None
    assert index.library("broken") is None
    assert any(
        m.startswith(f"index: cannot read {tmp_path / 'lib' / 'dune'}") for m in index_log.messages
    )


# --------------------------------------------------------------------------- cancellation


def test_cancelled_scan_stops_before_reading(
    tmp_path: Path, index_log: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, {f"m{i}.ml": f"let v{i} = {i}\n" for i in range(5)})
    calls: list[tuple[int, int]] = []
    index = WorkspaceIndex(tmp_path)
    index.scan(report=lambda done, total: calls.append((done, total)), cancelled=lambda: True)
    assert not index.ready.is_set()
    assert calls == []
    assert len(index.files) == 5  # discovered ...
    assert all(f.summary is None for f in index.files.values())  # ... but not read
    assert "index: cancelled after 0 of 5 files" in index_log.messages


def test_cancelled_scan_stops_midway(tmp_path: Path) -> None:
    write(tmp_path, {f"m{i}.ml": f"let v{i} = {i}\n" for i in range(10)})
    asked = 0

    def cancelled() -> bool:
        nonlocal asked
        asked += 1
        return asked > 3

    index = WorkspaceIndex(tmp_path)
    index.scan(cancelled=cancelled)
    assert not index.ready.is_set()
    assert asked == 4
    done = sorted(index.rel(p) for p, f in index.files.items() if f.summary is not None)
    assert done == ["m0.ml", "m1.ml", "m2.ml"]


def test_report_counts_increase_to_the_total(tmp_path: Path) -> None:
    write(tmp_path, {f"m{i:03}.ml": f"let v{i} = {i}\n" for i in range(120)})
    write(tmp_path, {"dune": "(library (name many))\n"})  # dune files are not counted
    calls: list[tuple[int, int]] = []
    index = WorkspaceIndex(tmp_path)
    index.scan(report=lambda done, total: calls.append((done, total)))
    assert calls == [(50, 120), (100, 120), (120, 120)]
    dones = [d for d, _ in calls]
    assert dones == sorted(set(dones))
    assert index.ready.is_set()
    assert all(f.summary is not None for f in index.files.values())


# --------------------------------------------------------------------------- freshness


def test_changed_rereads_the_file(tmp_path: Path) -> None:
    write(tmp_path, {"a.ml": "let old_name = 1\n", "b.ml": "let use = A.old_name\n"})
    index = scanned(tmp_path)
    a, b = tmp_path / "a.ml", tmp_path / "b.ml"
    assert names(index, a) == ["old_name"]
    assert definer_rels(index, "old_name") == ["a.ml"]
    assert user_rels(index, "old_name") == ["b.ml"]

    a.write_text("(* moved *)\n\nlet new_name = 2\nlet other = 3\n")
    index.changed(a)
    summary = index.summary(a)
    assert summary is not None
    assert [(d.name, d.line) for d in summary.definitions] == [("new_name", 2), ("other", 3)]
    assert definer_rels(index, "old_name") == []
    assert definer_rels(index, "new_name") == ["a.ml"]
    assert user_rels(index, "old_name") == ["b.ml"]  # b.ml has not changed yet

    b.write_text("let use = A.new_name\n")
    index.changed(b)
    assert user_rels(index, "old_name") == []
    assert user_rels(index, "new_name") == ["b.ml"]


def test_changed_adds_a_new_file_and_removes_a_deleted_one(tmp_path: Path) -> None:
    write(tmp_path, {"a.ml": "let a = 1\n"})
    index = scanned(tmp_path)
    new = tmp_path / "fresh.ml"
    new.write_text("let fresh = 1\n")
    index.changed(new)
    assert rels(index) == ["a.ml", "fresh.ml"]
    assert definer_rels(index, "fresh") == ["fresh.ml"]
    unit = index.unit_of(new)
    assert unit is not None and unit.name == "Fresh"
    new.unlink()
    index.changed(new)  # a change event for a file that is gone
    assert rels(index) == ["a.ml"]
    assert definer_rels(index, "fresh") == []
    assert index.units_named("Fresh") == []
    index.changed(tmp_path / "notes.txt")  # not a source file: ignored
    assert rels(index) == ["a.ml"]


def test_removed_drops_definitions_uses_and_unit(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "lib/dune": "(library (name l))\n",
            "lib/a.ml": "let shared = 1\n",
            "lib/a.mli": "val shared : int\n",
            "lib/b.ml": "let shared = 2\nlet use = A.shared\n",
        },
    )
    index = scanned(tmp_path)
    a_ml, a_mli, b = (tmp_path / "lib" / n for n in ("a.ml", "a.mli", "b.ml"))
    assert definer_rels(index, "shared") == ["lib/a.ml", "lib/a.mli", "lib/b.ml"]
    assert user_rels(index, "shared") == ["lib/b.ml"]

    a_mli.unlink()
    index.removed(a_mli)
    assert definer_rels(index, "shared") == ["lib/a.ml", "lib/b.ml"]
    unit = index.unit_of(a_ml)
    assert unit is not None and unit.mli is None and unit.ml is index.files[a_ml]

    b.unlink()
    index.removed(b)
    assert definer_rels(index, "shared") == ["lib/a.ml"]
    assert user_rels(index, "shared") == []
    assert index.unit_of(b) is None
    assert index.units_named("B") == []
    index.removed(b)  # twice: nothing happens
    assert rels(index) == ["lib/a.ml"]


def test_changed_dune_file_updates_stanzas(tmp_path: Path) -> None:
    write(tmp_path, {"lib/dune": "(library (name before))\n", "lib/a.ml": "let a = 1\n"})
    index = scanned(tmp_path)
    a = tmp_path / "lib" / "a.ml"
    unit = index.unit_of(a)
    assert unit is not None and unit.stanza is not None and unit.stanza.name == "before"
    (tmp_path / "lib" / "dune").write_text("(library (name after) (wrapped false))\n")
    index.changed(tmp_path / "lib" / "dune")
    assert index.library("before") is None
    after = index.library("after")
    assert after is not None and after.wrapped is False
    unit = index.unit_of(a)
    assert unit is not None and unit.stanza == after
    (tmp_path / "lib" / "dune").unlink()
    index.removed(tmp_path / "lib" / "dune")
    assert index.library("after") is None
    unit = index.unit_of(a)
    assert unit is not None and unit.stanza is None


def test_removed_root_dune_file_drops_its_stanza(tmp_path: Path) -> None:
    write(tmp_path, {"dune": "(library (name top))\n", "a.ml": "let a = 1\n"})
    index = scanned(tmp_path)
    assert index.library("top") is not None
    (tmp_path / "dune").unlink()
    index.removed(tmp_path / "dune")
    assert index.library("top") is None
    assert "" not in index.dune


@pytest.mark.parametrize("where", ["_build/default/a.ml", "ignored/a.ml", "leak.ml"])
def test_changed_respects_what_walk_skips(tmp_path: Path, where: str) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    write(root, {"a.ml": "let a = 1\n", ".gitignore": "ignored/\n"})
    write(outside, {"a.ml": "let a = 1\n"})
    index = scanned(root)
    path = root / where
    if where == "leak.ml":
        os.symlink(outside / "a.ml", path)
    else:
        write(root, {where: "let a = 1\n"})
    index.changed(path)
    assert rels(index) == ["a.ml"]
    assert definer_rels(index, "a") == ["a.ml"]


def _item(uri: str, text: str) -> types.TextDocumentItem:
    return types.TextDocumentItem(uri=uri, language_id="ocaml", version=1, text=text)


def _replace(
    store: DocumentStore, uri: str, version: int, line: int, start: int, end: int, text: str
) -> Document:
    doc = store.change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(
                        start=types.Position(line=line, character=start),
                        end=types.Position(line=line, character=end),
                    ),
                    text=text,
                )
            ],
        )
    )
    assert doc is not None
    return doc


def test_open_document_wins_over_the_disk(tmp_path: Path) -> None:
    write(tmp_path, {"a.ml": "let disk_value = 1\n", "b.ml": "let x = A.disk_value\n"})
    store = DocumentStore()
    index = scanned(tmp_path, store)
    a = tmp_path / "a.ml"
    assert names(index, a) == ["disk_value"]

    uri = path_to_uri(a)
    doc = store.open(_item(uri, "let buffer_value = 2\n\nlet second = 3\n"))
    index.update_document(doc)
    assert names(index, a) == ["buffer_value", "second"]
    assert definer_rels(index, "disk_value") == []
    assert definer_rels(index, "buffer_value") == ["a.ml"]

    # an incremental edit, summarized from the buffer's tree
    doc = _replace(store, uri, 2, 2, 4, 10, "renamed")
    assert doc.text == "let buffer_value = 2\n\nlet renamed = 3\n"
    index.update_document(doc)
    summary = index.summary(a)
    assert summary is not None
    assert [(d.name, d.line) for d in summary.definitions] == [
        ("buffer_value", 0),
        ("renamed", 2),
    ]
    assert definer_rels(index, "second") == []
    assert definer_rels(index, "renamed") == ["a.ml"]

    # a watched-file event while the buffer is open: the buffer still counts
    a.write_text("let disk_again = 1\n")
    index.changed(a)
    assert names(index, a) == ["buffer_value", "renamed"]

    # closing the buffer makes the disk count again
    store.close(uri)
    index.changed(a)
    assert names(index, a) == ["disk_again"]
    assert definer_rels(index, "renamed") == []


def test_document_open_before_scan_is_indexed_from_the_buffer(tmp_path: Path) -> None:
    write(tmp_path, {"a.ml": "let disk_value = 1\n"})
    store = DocumentStore()
    a = tmp_path / "a.ml"
    store.open(_item(path_to_uri(a), "let buffer_value = 1\n"))
    index = scanned(tmp_path, store)
    assert names(index, a) == ["buffer_value"]
    # a buffer for a file not on disk yet is indexed too
    new = tmp_path / "new.ml"
    doc = store.open(_item(path_to_uri(new), "let unsaved = 1\n"))
    index.update_document(doc)
    assert names(index, new) == ["unsaved"]
    assert definer_rels(index, "unsaved") == ["new.ml"]


def test_update_document_ignores_buffers_outside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root, {"a.ml": "let a = 1\n"})
    store = DocumentStore()
    index = scanned(root, store)
    doc = store.open(_item(path_to_uri(tmp_path / "elsewhere.ml"), "let e = 1\n"))
    index.update_document(doc)
    dune = store.open(_item(path_to_uri(root / "dune"), "(library (name x))"))
    index.update_document(dune)
    assert rels(index) == ["a.ml"]
    assert definer_rels(index, "e") == []


# --------------------------------------------------------------------------- memory


BODY = "let a = 1\n\nlet b = 2\n\nlet c = 3\n"


def test_chunk_cache_stays_bounded_over_many_disk_edits(tmp_path: Path) -> None:
    write(tmp_path, {"a.ml": BODY})
    index = WorkspaceIndex(tmp_path, cache=ChunkCache(maxsize=16))
    index.scan()
    assert len(index.cache) == 3
    path = tmp_path / "a.ml"
    for i in range(1000):
        path.write_text(BODY.replace("= 2", f"= {i + 10}"))
        index.changed(path)
        assert len(index.cache) <= 16
    assert len(index.cache) == 16
    summary = index.summary(path)
    assert summary is not None
    assert [d.name for d in summary.definitions] == ["a", "b", "c"]
    assert definer_rels(index, "b") == ["a.ml"]


def test_chunk_cache_does_not_grow_with_keystrokes(tmp_path: Path) -> None:
    write(tmp_path, {"a.ml": BODY})
    store = DocumentStore()
    index = WorkspaceIndex(tmp_path, store)
    index.cache = ChunkCache(maxsize=16)
    index.scan()
    path = tmp_path / "a.ml"
    uri = path_to_uri(path)
    doc = store.open(_item(uri, BODY))
    index.update_document(doc)
    assert len(index.cache) == 3  # the same chunks as on disk
    for i in range(1000):
        old = doc.text.splitlines()[2]
        doc = _replace(store, uri, i + 2, 2, 0, len(old), f"let b = {i}")
        index.update_document(doc)
    assert doc.text == BODY.replace("let b = 2", "let b = 999")
    assert len(index.cache) == 3  # keystroke versions of an item are not cached
    summary = index.summary(path)
    assert summary is not None
    assert [(d.name, d.line) for d in summary.definitions] == [("a", 0), ("b", 2), ("c", 4)]


def test_index_uses_the_chunk_cache_it_is_given(tmp_path: Path) -> None:
    cache = ChunkCache(maxsize=16)
    index = WorkspaceIndex(tmp_path, cache=cache)
    assert index.cache is cache
