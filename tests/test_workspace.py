"""Paths from the model: resolved inside the root, or refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lsprotocol import types

from ocaml_ai_ls.documents import DocumentStore
from ocaml_ai_ls.source_text import encode
from ocaml_ai_ls.uris import path_to_uri
from ocaml_ai_ls.workspace import PathRefused, Workspace, find_root


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "proj"
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "a.ml").write_text("let a = 1\n")
    (root / "dune-project").write_text("(lang dune 3.0)\n")
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "x.ml").write_text("let x = 1\n")
    os.symlink(outside, root / "link")
    return Workspace(root, DocumentStore())


@pytest.mark.parametrize(
    "written",
    [
        "/etc/passwd",
        "../secret/x.ml",
        "lib/../../secret/x.ml",
        "link/x.ml",
        "link/new.ml",
        "~/x.ml",
        "C:\\x.ml",
        ".git/config",
        "_build/default/a.ml",
        "lib",
    ],
)
def test_refused(ws: Workspace, written: str) -> None:
    with pytest.raises(PathRefused):
        ws.resolve(written, ws.root / "lib" / "a.ml")


def test_resolved(ws: Workspace) -> None:
    default = ws.root / "lib" / "a.ml"
    assert ws.resolve("", default) == default
    assert ws.resolve("./lib/a.ml", default) == default
    assert ws.resolve("lib\\a.ml", default) == default
    assert ws.resolve("lib/new.ml", default) == ws.root / "lib" / "new.ml"
    # a bare name the model was shown resolves to that file
    assert ws.resolve("a.ml", default, ["lib/a.ml"]) == default
    # a bare name matching two shown files stays as written (a new file at the root)
    assert ws.resolve("a.ml", default, ["lib/a.ml", "bin/a.ml"]) == ws.root / "a.ml"


def test_read_prefers_open_buffer(ws: Workspace) -> None:
    path = ws.root / "lib" / "a.ml"
    disk = ws.read(path)
    assert disk is not None and disk.text == "let a = 1\n" and disk.version is None
    ws.documents.open(
        types.TextDocumentItem(
            uri=path_to_uri(path), language_id="ocaml", version=7, text="let a = 2\n"
        )
    )
    buf = ws.read(path)
    assert (
        buf is not None and buf.text == "let a = 2\n" and buf.version == 7 and buf.rel == "lib/a.ml"
    )


def test_read_keeps_the_bytes_of_a_file_that_is_not_utf8(ws: Workspace) -> None:
    """Legal OCaml (issue #16 item 8): its text gives its bytes back."""
    path = ws.root / "lib" / "bin.ml"
    path.write_bytes(b'let s = "\xff"\n')
    found = ws.read(path)
    assert found is not None and encode(found.text) == b'let s = "\xff"\n'


def test_find_root(tmp_path: Path) -> None:
    (tmp_path / "p" / "lib").mkdir(parents=True)
    (tmp_path / "p" / "dune-project").write_text("")
    file = tmp_path / "p" / "lib" / "a.ml"
    assert find_root(file) == tmp_path / "p"
    assert find_root(file, [tmp_path, tmp_path / "p" / "lib"]) == tmp_path / "p" / "lib"
