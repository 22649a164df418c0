"""The generated benchmark project (`benchmarks/dune_fixture.py`) with the real dune:
it builds and its tests pass, and its two edits check as `ok` and `type_error`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from benchmarks.dune_fixture import (
    edit_target,
    library_modules,
    make_project,
    one_function_edit,
    type_error_edit,
)
from ocaml_ai_ls.verify.result import OK, TYPE_ERROR
from ocaml_ai_ls.verify.shadow import Shadow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("fixture") / "inventory")


def dune(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["dune", *args, "--root", str(root)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_project_is_a_layered_library_with_tests(project: Path) -> None:
    modules = library_modules(project)
    assert len(modules) >= 25
    sizes = [path.read_text().count("\n") for path in modules.values()]
    assert min(sizes) >= 30 and max(sizes) <= 80, sizes
    assert len(list((project / "lib").glob("*.mli"))) >= 5
    assert "(tests" in (project / "test" / "dune").read_text()
    assert (project / "reporting" / "dune").exists() and (project / "bin" / "dune").exists()


def test_it_is_deterministic(project: Path, tmp_path: Path) -> None:
    again = make_project(tmp_path / "again")
    files = sorted(
        p.relative_to(project) for p in project.rglob("*.ml*") if "_build" not in p.parts
    )
    assert files == sorted(p.relative_to(again) for p in again.rglob("*.ml*"))
    assert all((project / f).read_bytes() == (again / f).read_bytes() for f in files)
    other = make_project(tmp_path / "other", seed=1)
    assert any(
        (other / f).exists() and (project / f).read_bytes() != (other / f).read_bytes()
        for f in files
    )


def test_it_builds_and_its_tests_pass(project: Path) -> None:
    check = dune(project, "build", "@check")
    assert check.returncode == 0, check.stdout + check.stderr
    test = dune(project, "test")
    assert test.returncode == 0, test.stdout + test.stderr
    assert "behaviour tests passed" in test.stdout + test.stderr


def test_the_edits_check_ok_and_as_a_type_error(project: Path, tmp_path: Path) -> None:
    shadow = Shadow(project, tmp_path / "shadows" / "0")
    shadow.sync()
    assert shadow.build(120).code == 0
    rel, text = one_function_edit(project, 1)
    assert rel == edit_target(project) and not (project / rel).with_suffix(".mli").exists()
    original = (project / rel).read_text()
    assert text != original and text != one_function_edit(project, 2)[1]
    assert shadow.check({rel: text}, 60).status == OK
    mli_rel, mli_text = one_function_edit(project, 3, interface=True)
    assert (project / mli_rel).with_suffix(".mli").exists()
    assert shadow.check({mli_rel: mli_text}, 60).status == OK
    rel, text = type_error_edit(project, 4)
    result = shadow.check({rel: text}, 60)
    assert result.status == TYPE_ERROR, result
    [error] = result.errors
    line = text[: text.index("0.5")].count("\n") + 1
    assert (error.path, error.line) == (rel, line)
    assert (shadow.path / rel).read_text() == original == (project / rel).read_text()
