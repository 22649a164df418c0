"""The index's store on disk: the next run on a root parses only what changed."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from ocaml_ai_ls.context.index import WorkspaceIndex
from ocaml_ai_ls.context.parsing import SourceKind
from ocaml_ai_ls.context.summary import FileSummary
from ocaml_ai_ls.context.summary_store import SummaryStore, fingerprint, store_dir

FILES = {
    "dune": "(library (name shapes))\n",
    "shapes.mli": "(** A shape. *)\ntype t = Circle of float | Rect of float * float\n\n"
    "val area : t -> float\n",
    "shapes.ml": "type t = Circle of float | Rect of float * float\n\n"
    "let area = function\n  | Circle r -> Float.pi *. r *. r\n  | Rect (w, h) -> w *. h\n\n"
    "module Inner = struct\n  let rec twice f x = f (f x)\n  and once f x = f x\nend\n",
    "main.ml": "open Shapes\nlet () = print_float (area (Circle 1.)) ; Inner.once ignore ()\n"
    'let () = let open List in iter print_string ["a"]\n',
}


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    project = tmp_path / "project"
    project.mkdir()
    for rel, text in FILES.items():
        (project / rel).write_text(text)
    return project


def scanned(root: Path, store: SummaryStore | None) -> WorkspaceIndex:
    index = WorkspaceIndex(root, store=store)
    index.scan()
    return index


def facts(summary: FileSummary | None) -> tuple[object, ...]:
    assert summary is not None
    return (
        summary.kind,
        summary.line_count,
        summary.definitions,
        summary.references,
        summary.imports,
        summary.local_modules,
        tuple((c.start_line, c.end_line, c.start_byte, c.end_byte) for c in summary.chunks),
        tuple(c.summary.bound for c in summary.chunks),
    )


def test_a_second_run_reads_every_summary_from_the_store_unchanged(root: Path) -> None:
    first = SummaryStore.for_root(root)
    scanned(root, first)
    assert (first.hits, first.misses) == (0, 3)
    second = SummaryStore.for_root(root)
    index = scanned(root, second)
    assert (second.hits, second.misses) == (3, 0)
    fresh = scanned(root, None)
    for path in fresh.files:
        assert facts(index.summary(path)) == facts(fresh.summary(path)), path
    assert [f.path for f in index.definers("area")] == [f.path for f in fresh.definers("area")]


def test_only_a_changed_file_is_parsed_again(root: Path) -> None:
    scanned(root, SummaryStore.for_root(root))
    (root / "main.ml").write_text("let () = print_float (Shapes.area (Shapes.Rect (1., 2.)))\n")
    store = SummaryStore.for_root(root)
    index = scanned(root, store)
    assert (store.hits, store.misses) == (2, 1)
    main = index.summary(root / "main.ml")
    assert main is not None and ("Shapes", "area") in {r.path for r in main.references}


def test_the_store_lives_outside_the_workspace_and_a_warm_run_does_not_rewrite_it(
    root: Path,
) -> None:
    store = SummaryStore.for_root(root)
    scanned(root, store)
    assert store.path.parent == store_dir() and store.path.is_file()
    assert not store.path.is_relative_to(root)
    os.utime(store.path, (1, 1))
    scanned(root, SummaryStore.for_root(root))
    assert store.path.stat().st_mtime == 1
    assert sorted(p.name for p in store_dir().iterdir()) == [store.path.name]  # no temp file


def test_a_damaged_store_is_a_cold_start_and_is_rewritten(root: Path) -> None:
    store = SummaryStore.for_root(root)
    scanned(root, store)
    store.path.write_bytes(store.path.read_bytes()[:100])
    again = SummaryStore.for_root(root)
    scanned(root, again)
    assert (again.hits, again.misses) == (0, 3)
    third = SummaryStore.for_root(root)
    scanned(root, third)
    assert third.hits == 3


def test_a_store_made_by_another_summarizer_is_not_used(root: Path) -> None:
    store = SummaryStore.for_root(root)
    scanned(root, store)
    _stamp, entries = pickle.loads(store.path.read_bytes())
    store.path.write_bytes(pickle.dumps(("another summarizer", entries)))
    again = SummaryStore.for_root(root)
    scanned(root, again)
    assert again.hits == 0
    assert pickle.loads(store.path.read_bytes())[0] == fingerprint()


def test_an_unwritable_cache_directory_only_costs_speed(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    index = scanned(root, SummaryStore.for_root(root))
    assert index.ready.is_set() and index.definers("area")


def test_the_store_lets_go_after_its_scan(root: Path) -> None:
    """A long session does not keep the stored summaries: after the scan a file read
    again is summarised as usual, and nothing more is recorded or written."""
    scanned(root, SummaryStore.for_root(root))
    store = SummaryStore.for_root(root)
    index = scanned(root, store)
    assert store.hits == 3
    data = (root / "main.ml").read_bytes()
    assert store.get(SourceKind.IMPLEMENTATION, data)[1] is None
    (root / "main.ml").write_text("let () = print_endline Shapes.(string_of_float 1.)\n")
    index.changed(root / "main.ml")
    assert index.summary(root / "main.ml") is not None
    written = store.path.stat().st_mtime_ns
    store.save()
    assert store.path.stat().st_mtime_ns == written
