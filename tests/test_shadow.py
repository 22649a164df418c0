"""Shadow builds with the real dune: statuses, locations, restoration, timeouts."""

from __future__ import annotations

import asyncio
import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ocaml_ai_ls.verify.pool import ShadowPool
from ocaml_ai_ls.verify.result import (
    RANKED,
    TEST_FAILURE,
    TIMEOUT,
    TYPE_ERROR,
    WARNING,
    CheckError,
    compile_status,
)
from ocaml_ai_ls.verify.shadow import Shadow

PROJECT = {
    "dune-project": "(lang dune 2.9)\n",
    "lib/dune": "(library (name calc))\n",
    "lib/calc.ml": "let double x = 2 * x\n\nlet half x = x / 2\n",
    "test/dune": "(test (name t) (libraries calc))\n",
    "test/t.ml": "let () = assert (Calc.double 21 = 42)\n",
}


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "_build" not in p.parts):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("user") / "calc"
    for rel, text in PROJECT.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture(scope="module")
def shadow(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Shadow:
    s = Shadow(project, tmp_path_factory.mktemp("cache") / "0")
    s.sync()
    assert s.build(120).code == 0  # warm
    return s


def test_a_good_edit_type_checks_and_passes_the_tests(project: Path, shadow: Shadow) -> None:
    before = tree_digest(project)
    result = shadow.check({"lib/calc.ml": "let double x = x + x\n\nlet half x = x / 2\n"}, 60, True)
    assert result.status == "ok", result
    assert [(s.name, s.status) for s in result.stages] == [("check", "ok"), ("test", "ok")]
    assert tree_digest(project) == before
    assert (shadow.path / "lib/calc.ml").read_text() == PROJECT["lib/calc.ml"]


def test_a_type_error_is_located(project: Path, shadow: Shadow) -> None:
    before = tree_digest(project)
    result = shadow.check({"lib/calc.ml": 'let double x = 2 * x\n\nlet half x = x /. "2"\n'}, 60)
    assert result.status == TYPE_ERROR
    [error] = result.errors
    assert (error.path, error.line, error.column) == ("lib/calc.ml", 3, 19)  # the "2"
    assert "float" in error.message
    assert tree_digest(project) == before
    assert (shadow.path / "lib/calc.ml").read_text() == PROJECT["lib/calc.ml"]


def test_a_broken_test_is_a_test_failure(shadow: Shadow) -> None:
    result = shadow.check({"lib/calc.ml": "let double x = 3 * x\n\nlet half x = x / 2\n"}, 60, True)
    assert result.status == TEST_FAILURE
    assert [(s.name, s.status) for s in result.stages] == [("check", "ok"), ("test", TEST_FAILURE)]


def test_a_looping_test_is_killed_at_the_timeout_and_the_shadow_restored(
    project: Path, shadow: Shadow
) -> None:
    before = tree_digest(project)
    looping = "let rec double x = double x\n\nlet half x = x / 2\n"
    result = shadow.check({"lib/calc.ml": looping}, 5, True)
    assert result.status == TIMEOUT
    assert result.stages[-1].name == "test" and result.stages[-1].status == TIMEOUT
    assert (shadow.path / "lib/calc.ml").read_text() == PROJECT["lib/calc.ml"]
    assert tree_digest(project) == before
    assert shadow.check({}, 60, True).status == "ok"  # and it still works


def test_new_and_deleted_files_are_undone(shadow: Shadow) -> None:
    result = shadow.check({"lib/extra.ml": "let x = Calc.double 1\n"}, 60)
    assert result.status == TYPE_ERROR  # a library module cannot name its own library
    assert not (shadow.path / "lib/extra.ml").exists()
    with pytest.raises(ValueError):
        shadow.check({"../escape.ml": "let x = 1\n"}, 60)


def test_two_shadows_check_concurrently_without_interfering(project: Path, tmp_path: Path) -> None:
    shadows = [Shadow(project, tmp_path / str(i)) for i in range(2)]
    for s in shadows:
        s.sync()
    good = {"lib/calc.ml": "let double x = x + x\n\nlet half x = x / 2\n"}
    bad = {"lib/calc.ml": 'let double x = x + "x"\n\nlet half x = x / 2\n'}
    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(lambda a: a[0].check(a[1], 120), zip(shadows, [good, bad], strict=True))
        )
    assert [r.status for r in results] == ["ok", TYPE_ERROR]


def test_sync_mirrors_buffers_and_removed_files(project: Path, tmp_path: Path) -> None:
    s = Shadow(project, tmp_path / "s")
    s.sync()
    (s.path / "lib" / "stale.ml").write_text("let stale = 1\n")
    s.sync({"lib/calc.ml": "let double x = x * 2\n"})
    assert (s.path / "lib/calc.ml").read_text() == "let double x = x * 2\n"
    assert not (s.path / "lib/stale.ml").exists()
    assert (project / "lib/calc.ml").read_text() == PROJECT["lib/calc.ml"]


def test_sync_leaves_ignored_files_out_and_writes_unsaved_buffers(tmp_path: Path) -> None:
    root = tmp_path / "p"
    for rel, text in {
        **PROJECT,
        ".gitignore": "*.log\nsecrets/\n",
        "build.log": "noise\n",
        "secrets/key.ml": "let key = 42\n",
        "_build/default/old.ml": "stale\n",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    s = Shadow(root, tmp_path / "s")
    s.sync({"lib/fresh.ml": "let fresh = 1\n", "build2.log": "ignored buffer\n"})
    mirrored = sorted(p.relative_to(s.path).as_posix() for p in s.path.rglob("*") if p.is_file())
    assert mirrored == sorted([*PROJECT, ".gitignore", "lib/fresh.ml"])
    # a file that becomes ignored leaves the shadow at the next sync
    (root / ".gitignore").write_text("*.log\nsecrets/\ntest/\n")
    s.sync()
    assert not (s.path / "test").joinpath("t.ml").exists()
    assert not (s.path / "lib/fresh.ml").exists()  # its buffer was closed


def test_two_pools_on_one_project_never_share_a_shadow(project: Path, tmp_path: Path) -> None:
    first = ShadowPool(project, 2, cache=tmp_path)
    second = ShadowPool(project, 2, cache=tmp_path)
    paths = [s.path for s in first.shadows + second.shadows]
    assert len(set(paths)) == 4
    first.close()
    third = ShadowPool(project, 2, cache=tmp_path)  # takes the freed slots again
    assert [s.path for s in third.shadows] == [s.path for s in first.shadows]
    second.close()
    third.close()


async def test_a_pool_checks_more_candidates_than_shadows(project: Path, tmp_path: Path) -> None:
    buffers = {"lib/calc.ml": "let double x = x * 2\n\nlet half x = x / 2\n"}
    pool = ShadowPool(project, 2, lambda: buffers, cache=tmp_path)
    reports: list[tuple[int, int]] = []
    await pool.warm(120, lambda done, total: reports.append((done, total)))
    assert reports == [(1, 2), (2, 2)]
    # the open buffer, not the disk, is what the shadows hold
    assert all((s.path / "lib/calc.ml").read_text() == buffers["lib/calc.ml"] for s in pool.shadows)
    candidates = [
        {"lib/calc.ml": "let double x = x + x\n\nlet half x = x / 2\n"},
        {"lib/calc.ml": 'let double x = x + "x"\n\nlet half x = x / 2\n'},
        {"test/t.ml": "let () = assert (Calc.half 4 = 2)\n"},
    ]
    results = await asyncio.gather(*(pool.check(c, 120, False) for c in candidates))
    assert [r.status for r in results] == ["ok", TYPE_ERROR, "ok"]
    # an edit of the buffer reaches the shadows at their next check
    buffers["lib/calc.ml"] = 'let double x = x +. "x"\n'
    pool.changed()
    assert (await pool.check({}, 120, False)).status == TYPE_ERROR
    assert (project / "lib/calc.ml").read_text() == PROJECT["lib/calc.ml"]


async def test_a_change_named_by_path_syncs_that_file_only(tmp_path: Path) -> None:
    root = tmp_path / "calc"
    for rel, text in PROJECT.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    buffers: dict[str, str] = {}
    pool = ShadowPool(root, 1, lambda: buffers, cache=tmp_path / "cache")
    try:
        await pool.warm(120, lambda done, total: None)
        [shadow] = pool.shadows
        buffers["lib/calc.ml"] = 'let double x = x +. "x"\n'
        (root / "test/t.ml").write_text("let () = ()\n")  # not reported: not synced yet
        pool.changed("lib/calc.ml")
        assert (await pool.check({}, 120, False)).status == TYPE_ERROR
        assert (shadow.path / "lib/calc.ml").read_text() == buffers["lib/calc.ml"]
        assert (shadow.path / "test/t.ml").read_text() == PROJECT["test/t.ml"]
        # a .gitignore change may hide or show any file: the whole tree is synced
        (root / "lib/extra.ml").write_text("let x = 1\n")
        (root / ".gitignore").write_text("lib/extra.ml\n")
        pool.changed(".gitignore")
        await pool.check({}, 120, False)
        assert (shadow.path / "test/t.ml").read_text() == "let () = ()\n"
        assert not (shadow.path / "lib/extra.ml").exists()
    finally:
        pool.close()


async def test_a_cancelled_check_frees_its_shadow_at_once(project: Path, tmp_path: Path) -> None:
    pool = ShadowPool(project, 1, cache=tmp_path)
    try:
        await pool.warm(120, lambda done, total: None)
        [shadow] = pool.shadows
        looping = {"lib/calc.ml": "let rec double x = double x\n\nlet half x = x / 2\n"}
        check = asyncio.ensure_future(pool.check(looping, 600, True))
        for _ in range(300):  # until `dune test` runs the looping test
            await asyncio.sleep(0.05)
            if "test" in str(getattr(shadow._running, "args", "")):
                break
        check.cancel()
        # the next check gets the shadow long before the looping one's timeout
        after = await asyncio.wait_for(pool.check({}, 120, True), 20)
        assert after.status == "ok"
        assert (shadow.path / "lib/calc.ml").read_text() == PROJECT["lib/calc.ml"]
        assert check.cancelled()
    finally:
        pool.close()


def test_ranking_puts_what_the_compiler_liked_first() -> None:
    assert RANKED.index("ok") < RANKED.index(WARNING) < RANKED.index(TEST_FAILURE)
    assert RANKED.index(TEST_FAILURE) < RANKED.index(TYPE_ERROR) < RANKED.index("parse_error")


def test_a_build_failing_on_warnings_only_is_a_warning() -> None:
    warning = CheckError("a.ml", 1, 1, "unused variable y.", severity="warning", warning=26)
    error = CheckError("a.ml", 2, 1, "Unbound value z")
    syntax = CheckError("a.ml", 3, 1, "Syntax error")
    assert compile_status((warning,)) == WARNING
    assert compile_status((warning, error)) == TYPE_ERROR
    assert compile_status((syntax,)) == "parse_error"
    assert compile_status(()) == TYPE_ERROR  # dune failed with no located error


UNUSED = "let double x = let unused = 1 in 2 * x\n\nlet half x = x / 2\n"


def test_an_unused_variable_fails_the_dev_build_as_a_warning(shadow: Shadow) -> None:
    result = shadow.check({"lib/calc.ml": UNUSED}, 60)
    assert result.status == WARNING, result
    [error] = result.errors
    assert (error.path, error.line, error.severity, error.warning) == (
        "lib/calc.ml",
        1,
        "warning",
        26,
    )
    assert "unused" in error.message


def test_the_release_profile_builds_with_warnings(project: Path, tmp_path: Path) -> None:
    s = Shadow(project, tmp_path / "0", profile="release")
    s.sync()
    assert s.build(120).code == 0
    assert s.check({"lib/calc.ml": UNUSED}, 60).status == "ok"
