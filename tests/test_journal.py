"""`edit --apply` writes all or nothing: a process killed (SIGKILL) at any step of a
multi-file write leaves every file all old or all new once `recover` has run, and
never a temporary file in the project."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocaml_ai_ls import journal
from ocaml_ai_ls.journal import Recovery, WriteRefused, journal_dir, recover, write_all
from tests.editor import server_env, start_editor, stop_editor, wait_until
from tests.model_server import ScriptedModel
from tests.test_headless import REWRITE, SHAPES, run_edit

OLD = {"lib/a.ml": "let a = 1\n", "lib/c.ml": "let c = 3\n", "lib/d.ml": "let d = 4\n"}
#: The edit: a changed file, a new file in a new directory, a deleted file.
EDIT: dict[str, str | None] = {
    "lib/a.ml": "let a = 2\n",
    "lib/sub/new.ml": "let fresh = 0\n",
    "lib/c.ml": None,
}
NEW = {"lib/a.ml": "let a = 2\n", "lib/sub/new.ml": "let fresh = 0\n", "lib/d.ml": "let d = 4\n"}
#: The steps of a write, in order, and whether a kill there is finished or rolled back.
STEPS = [
    ("prepared", "rolled it back"),
    ("staged", "rolled it back"),
    ("committed", "finished it"),
    ("replaced-1", "finished it"),
    ("replaced-2", "finished it"),
    ("replaced-3", "finished it"),
    ("finished", "finished it"),
    ("dropped", None),  # the journal was already forgotten: nothing to say
]
#: A process writing EDIT to the root in argv[1] through the journal, as `edit --apply`.
WRITER = """
import json, sys
from pathlib import Path
from ocaml_ai_ls.journal import write_all
root = Path(sys.argv[1])
edit = json.loads(sys.argv[2])
write_all(root, lambda read: {root / r: None if t is None else t.encode() for r, t in edit.items()})
"""


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    project = tmp_path / "project"
    for rel, text in OLD.items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(text)
    (project / "dune-project").write_text("(lang dune 3.0)\n")
    yield project


def files(root: Path) -> dict[str, str]:
    """Every file under the root (dotfiles and temporaries too) but `dune-project`."""
    return {
        p.relative_to(root).as_posix(): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "dune-project"
    }


def run_writer(
    root: Path, stop_at: str = "", edit: dict[str, str | None] = EDIT, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WRITER, str(root), json.dumps(edit)],
        env={**os.environ, "OCAML_AI_LS_STOP_AT": stop_at, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def run_recover(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocaml_ai_ls", "recover", "--root", str(root), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def pending(root: Path) -> list[Path]:
    home = journal_dir(root)
    return sorted(home.glob("txn-*")) if home.is_dir() else []


@pytest.mark.parametrize(("step", "outcome"), STEPS)
def test_a_kill_at_each_step_is_all_old_or_all_new_after_recover(
    root: Path, step: str, outcome: str | None
) -> None:
    killed = run_writer(root, step)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done = run_recover(root)
    assert done.returncode == 0, done.stderr
    if outcome is None:
        assert done.stderr == ""
    else:
        assert done.stderr.count("\n") == 1  # one line
        assert f"was interrupted; {outcome}: lib/a.ml, lib/sub/new.ml, lib/c.ml" in done.stderr
    expected = OLD if outcome == "rolled it back" else NEW
    assert files(root) == expected  # no temporary file, no leftover directory
    assert not (root / "lib/sub").exists() or expected is NEW
    assert pending(root) == []
    again = run_recover(root)
    assert (again.returncode, again.stderr) == (0, "")
    assert files(root) == expected


def test_the_first_replacement_killed_leaves_a_mix_that_recover_finishes(root: Path) -> None:
    """What the issue saw: killed after the first file, one new and the rest old."""
    assert run_writer(root, "replaced-1").returncode == -signal.SIGKILL
    assert files(root) == {**OLD, "lib/a.ml": "let a = 2\n"}
    assert run_recover(root).returncode == 0
    assert files(root) == NEW


def test_a_kill_while_recovering_is_settled_by_the_next_recover(root: Path) -> None:
    assert run_writer(root, "committed").returncode == -signal.SIGKILL
    assert run_recover(root, OCAML_AI_LS_STOP_AT="settled-2").returncode == -signal.SIGKILL
    assert files(root)["lib/sub/new.ml"] == "let fresh = 0\n"  # half way through
    assert files(root)["lib/c.ml"] == OLD["lib/c.ml"]
    done = run_recover(root)
    assert done.returncode == 0 and "finished it" in done.stderr
    assert files(root) == NEW


def test_a_committed_write_missing_a_new_text_is_rolled_back(root: Path) -> None:
    """A committed journal is finished only if every text still to write is there,
    intact; else the files already replaced get their old text (a deleted file back, a
    created one and its new directory removed)."""
    edit: dict[str, str | None] = {
        "lib/sub/new.ml": "let fresh = 0\n",
        "lib/c.ml": None,
        "lib/a.ml": "let a = 2\n",
    }
    assert run_writer(root, "replaced-2", edit=edit).returncode == -signal.SIGKILL
    assert "lib/c.ml" not in files(root) and "lib/sub/new.ml" in files(root)
    [txn] = pending(root)
    (txn / "new-2-a.ml").write_text("let a = 2 (* damaged *)\n")
    done = run_recover(root)
    assert done.returncode == 0
    assert "rolled it back: lib/sub/new.ml, lib/c.ml, lib/a.ml are as before" in done.stderr
    assert files(root) == OLD and not (root / "lib/sub").exists()
    assert pending(root) == []


def test_an_unreadable_journal_is_kept_and_the_files_left_alone(root: Path) -> None:
    assert run_writer(root, "replaced-1").returncode == -signal.SIGKILL
    [txn] = pending(root)
    (txn / "journal.json").write_text("{not json")
    before = files(root)
    done = run_recover(root)
    assert done.returncode == 1 and "unreadable journal" in done.stderr
    assert "Traceback" not in done.stderr
    assert files(root) == before and pending(root) == []
    assert (journal_dir(root) / "unsettled" / txn.name / "old-0-a.ml").read_text() == OLD[
        "lib/a.ml"
    ]


def test_recover_never_overwrites_a_file_changed_since(root: Path) -> None:
    assert run_writer(root, "replaced-1").returncode == -signal.SIGKILL
    (root / "lib/a.ml").write_text("let a = 42 (* the user's *)\n")
    before = files(root)
    done = run_recover(root)
    assert done.returncode == 1
    assert "lib/a.ml changed since; every file is left as it is" in done.stderr
    assert files(root) == before
    kept = Path(done.stderr.rsplit(" are kept in ", 1)[1].strip())
    assert kept.is_dir() and kept.parent.name == "unsettled"
    texts = {p.name: p.read_text() for p in kept.iterdir() if p.name != "journal.json"}
    assert texts == {  # a.ml's new text was the file, which the user changed
        "old-0-a.ml": "let a = 1\n",
        "new-1-new.ml": "let fresh = 0\n",
        "old-2-c.ml": "let c = 3\n",
    }
    again = run_recover(root)  # told once; the texts stay where the message said
    assert (again.returncode, again.stderr) == (0, "")
    assert kept.is_dir()


def test_recover_on_a_clean_project_says_nothing_and_changes_nothing(
    root: Path, tmp_path: Path
) -> None:
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    state = tmp_path / "state"
    done = run_recover(root, XDG_STATE_HOME=str(state))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == stamps
    assert not state.exists()  # not even a journal directory
    assert recover(root) is None


def test_recover_takes_a_relative_root_and_refuses_a_missing_one(root: Path) -> None:
    assert run_writer(root, "replaced-2").returncode == -signal.SIGKILL
    done = subprocess.run(
        [sys.executable, "-m", "ocaml_ai_ls", "recover", "--root", "."],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0 and "finished it" in done.stderr
    assert files(root) == NEW
    missing = run_recover(root / "nowhere")
    assert missing.returncode == 2
    assert "is not a directory" in missing.stderr and "Traceback" not in missing.stderr


def test_a_journal_on_another_filesystem_copies_beside_the_file_and_cleans_up(
    root: Path, tmp_path: Path
) -> None:
    """The journal cannot be renamed into the project: a copy beside each file, then a
    rename in its directory; a kill between the two leaves a temporary file that the
    next command removes."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on a filesystem of its own")
    state = shm / f"ocaml-ai-test-{os.getpid()}-{tmp_path.name}"
    try:
        killed = run_writer(root, "copied", XDG_STATE_HOME=str(state))
        assert killed.returncode == -signal.SIGKILL
        assert any(p.name.endswith(".tmp") for p in (root / "lib").iterdir())
        done = run_recover(root, XDG_STATE_HOME=str(state))
        assert done.returncode == 0 and "finished it" in done.stderr
        assert files(root) == NEW
        assert run_writer(root, edit={"lib/a.ml": "let a = 3\n"}, XDG_STATE_HOME=str(state))
        assert files(root) == {**NEW, "lib/a.ml": "let a = 3\n"}
    finally:
        subprocess.run(["rm", "-rf", str(state)], check=False)


def test_a_second_writer_waits_for_the_first(root: Path) -> None:
    """Two `edit --apply` on one project: one writes (and reads) after the other."""
    home = journal_dir(root)
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(root), json.dumps({"lib/a.ml": "let a = 5\n"})],
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)
        assert writer.poll() is None and files(root) == OLD
        assert recover(root) is None  # a live writer's lock: none of recover's business
    assert writer.wait(timeout=30) == 0
    assert files(root)["lib/a.ml"] == "let a = 5\n"


def test_a_writer_that_cannot_get_the_lock_writes_nothing(root: Path) -> None:
    home = journal_dir(root)
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(WriteRefused, match="another ocaml-ai-ls is writing"):
            write_all(root, lambda read: {root / "lib/a.ml": b"x"}, wait=0.2)
        busy = recover(root, wait=0.2)
    assert busy == Recovery(f"another ocaml-ai-ls is writing to {root}; try again", False)
    assert files(root) == OLD


def test_a_write_keeps_modes_and_makes_new_files_by_the_umask(root: Path) -> None:
    (root / "lib/a.ml").chmod(0o640)
    old_umask = os.umask(0o022)
    try:
        write_all(
            root,
            lambda read: {root / r: None if t is None else t.encode() for r, t in EDIT.items()},
        )
    finally:
        os.umask(old_umask)
    assert files(root) == NEW
    assert (root / "lib/a.ml").stat().st_mode & 0o777 == 0o640
    assert (root / "lib/sub/new.ml").stat().st_mode & 0o777 == 0o644
    assert pending(root) == []


def test_the_plan_reads_through_links_and_unchanged_files_are_not_touched(root: Path) -> None:
    (root / "lib/link.ml").symlink_to("a.ml")
    stamp = (root / "lib/d.ml").stat().st_mtime_ns

    def plan(read: journal.Reader) -> dict[Path, bytes | None]:
        text = read(root / "lib/link.ml")
        assert text is not None
        return {
            root / "lib/link.ml": text + b"let b = 2\n",
            root / "lib/d.ml": read(root / "lib/d.ml"),
        }

    write_all(root, plan)
    assert (root / "lib/link.ml").is_symlink()  # written through, as an editor writes
    assert (root / "lib/a.ml").read_text() == "let a = 1\nlet b = 2\n"
    assert (root / "lib/d.ml").stat().st_mtime_ns == stamp


def test_a_file_changed_while_writing_rolls_back_what_was_written(root: Path) -> None:
    """The user's editor saves a file between the read and its replacement: the edit is
    refused, the files it had replaced get their old text back, the user's stays."""

    def plan(read: journal.Reader) -> dict[Path, bytes | None]:
        for rel in ("lib/a.ml", "lib/d.ml"):
            read(root / rel)
        (root / "lib/d.ml").write_text("let d = 44 (* saved meanwhile *)\n")
        return {
            root / "lib/a.ml": b"let a = 2\n",
            root / "lib/d.ml": b"let d = 5\n",
            root / "lib/sub/x.ml": b"",
        }

    with pytest.raises(WriteRefused, match=r"lib/d.ml changed while .*; every file is as it was"):
        write_all(root, plan)
    assert files(root) == {**OLD, "lib/d.ml": "let d = 44 (* saved meanwhile *)\n"}
    assert not (root / "lib/sub").exists()
    assert pending(root) == []


def test_a_path_outside_the_root_is_refused(root: Path, tmp_path: Path) -> None:
    (root / "lib/out.ml").symlink_to(tmp_path / "elsewhere.ml")
    with pytest.raises(WriteRefused, match="outside"):
        write_all(root, lambda read: {root / "lib/out.ml": b"x", root / "lib/a.ml": b"y"})
    assert files(root) == OLD and not (tmp_path / "elsewhere.ml").exists()


# -- `ocaml-ai-ls edit --apply` itself, killed -----------------------------------------


def killed_edit(project: Path, model: ScriptedModel) -> None:
    """`edit --apply` of a two-file answer, killed right after its first replacement."""
    model.enqueue(REWRITE)
    env = server_env(model.base_url, OCAML_AI_LS_STOP_AT="replaced-1")
    killed = run_edit(project, model.base_url, f"{SHAPES}:9:5", "x", "--apply", env=env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # what the issue saw: one file new, the other old
    assert "abs_float" in (project / SHAPES).read_text()
    assert not (project / "lib/extra.ml").exists()


def assert_applied(project: Path, before: dict[str, str]) -> None:
    after = files(project)
    assert set(after) == {*before, "lib/extra.ml"}  # and no temporary file
    assert "abs_float (w *. h)" in after[SHAPES]
    assert after["lib/extra.ml"] == "let extra = 1\n"


def test_edit_apply_killed_half_way_is_finished_by_recover(
    project: Path, model: ScriptedModel
) -> None:
    before = files(project)
    killed_edit(project, model)
    done = run_recover(project)
    assert done.returncode == 0
    assert done.stderr == (
        f"ocaml-ai-ls: an `edit --apply` in {project} was interrupted; finished it: "
        "lib/shapes.ml, lib/extra.ml have the new text\n"
    )
    assert_applied(project, before)


def test_the_next_edit_settles_a_killed_apply_first(project: Path, model: ScriptedModel) -> None:
    before = files(project)
    killed_edit(project, model)
    model.enqueue(REWRITE)
    done = run_edit(project, model.base_url, f"{SHAPES}:9", "x")
    assert done.stderr.startswith(f"ocaml-ai-ls: an `edit --apply` in {project} was interrupted")
    assert "finished it" in done.stderr.splitlines()[0]
    assert_applied(project, before)


async def test_the_server_settles_a_killed_apply_at_its_start(
    project: Path, model: ScriptedModel
) -> None:
    before = files(project)
    killed_edit(project, model)
    editor = await start_editor(project, model.base_url)
    try:
        assert await wait_until(lambda: any("was interrupted" in m for m in editor.shown()))
        [shown] = [m for m in editor.shown() if "was interrupted" in m]
        assert "finished it: lib/shapes.ml, lib/extra.ml have the new text" in shown
    finally:
        await stop_editor(editor)
    assert_applied(project, before)
