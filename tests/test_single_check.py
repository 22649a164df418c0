"""Type-checking outside a dune project, one module at a time, with the real compiler."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ocaml_ai_ls.verify.result import OK, PARSE_ERROR, TYPE_ERROR, UNVERIFIED, Verification
from ocaml_ai_ls.verify.single import SingleFileChecker, disk_reader


class OnDisk:
    """The checker reading the files under one root."""

    def __init__(self, root: Path, command: list[str] | None = None) -> None:
        self.root = root
        self.checker = SingleFileChecker(command)

    def check(self, files: Mapping[str, str | None], timeout: float) -> Verification:
        return self.checker.check(files, disk_reader(self.root, {}), timeout)


def reader(root: Path) -> OnDisk:
    return OnDisk(root)


def test_a_file_that_compiles_alone_is_checked(tmp_path: Path) -> None:
    (tmp_path / "a.ml").write_text("let double x = 2 * x\n")
    checker = reader(tmp_path)
    assert checker.check({"a.ml": "let double x = x + x\n"}, 60).status == OK
    bad = checker.check({"a.ml": 'let double x = x + "x"\n'}, 60)
    assert bad.status == TYPE_ERROR
    [error] = bad.errors
    assert (error.path, error.line, error.column, error.end_column) == ("a.ml", 1, 20, 23)
    assert [s.name for s in bad.stages] == ["ocamlc"]
    assert checker.check({"a.ml": "let double x = (x\n"}, 60).status == PARSE_ERROR


def test_the_interface_is_checked_too(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/b.ml").write_text("let half x = x / 2\n")
    (tmp_path / "sub/b.mli").write_text("val half : int -> int\n")
    checker = reader(tmp_path)
    found = checker.check({"sub/b.ml": "let half x = x /. 2.\n"}, 60)
    assert found.status == TYPE_ERROR
    assert found.errors[0].path == "sub/b.ml"
    assert "half" in found.errors[0].message
    both = {"sub/b.ml": "let half x = x /. 2.\n", "sub/b.mli": "val half : float -> float\n"}
    assert checker.check(both, 60).status == OK
    assert checker.check({"sub/new.ml": "let fresh = 1\n"}, 60).status == OK


def test_a_file_that_needs_the_project_is_unverified_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "c.ml").write_text("let x = Other.value + 1\n")
    found = reader(tmp_path).check({"c.ml": "let x = Other.value + 2\n"}, 60)
    assert found.status == UNVERIFIED
    assert "does not compile on its own" in found.errors[0].message
    assert "Other" in found.errors[0].message


def test_without_a_compiler_nothing_is_claimed(tmp_path: Path) -> None:
    (tmp_path / "a.ml").write_text("let x = 1\n")
    checker = OnDisk(tmp_path)
    checker.checker.command = None
    found = checker.check({"a.ml": "let x = 2\n"}, 60)
    assert found.status == UNVERIFIED
    assert "no OCaml compiler" in found.errors[0].message
    # files that are not OCaml sources need no compiler
    assert reader(tmp_path).check({"README.md": "hi\n"}, 60).status == OK
