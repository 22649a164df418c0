"""The snapshot store against the real `git`: round trips, dedup, what is never stored,
kill -9 in the middle of a snapshot, and retention by age and by size."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ocaml_ai_ls.snapshots.store import (
    GREEN,
    RED,
    UNKNOWN,
    BuildState,
    SnapshotStore,
    StoreBusy,
    is_secret,
    source_files,
)
from ocaml_ai_ls.verify.result import CheckError
from tests.editor import copy_example

REPO = Path(__file__).resolve().parent.parent
T0 = 1_700_000_000.0
DAY = 86400.0
ERROR = CheckError("lib/shapes.ml", 8, 28, "This expression has type string", 8, 31)


def git(store: SnapshotStore, *args: str) -> str:
    """A git command on the store, as a person inspecting it would run it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_DIR=str(store.path), GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    done = subprocess.run(["git", *args], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def stored_paths(store: SnapshotStore) -> set[str]:
    """Every path in every commit the store holds (reachable or not)."""
    paths: set[str] = set()
    for commit in git(store, "rev-list", "--all").split():
        paths.update(git(store, "ls-tree", "-r", "--name-only", commit).splitlines())
    return paths


def fsck_clean(store: SnapshotStore) -> None:
    """`git fsck` passes (dangling objects, a lost snapshot's, are not errors)."""
    git(store, "fsck", "--full", "--strict", "--no-dangling")


@pytest.fixture
def store(tmp_path: Path) -> SnapshotStore:
    root = tmp_path / "project"
    root.mkdir()
    return SnapshotStore(root, tmp_path / "data")


def test_take_log_files_round_trip(store: SnapshotStore) -> None:
    assert store.log() == [] and not store.exists()
    v1 = {
        "dune-project": b"(lang dune 2.9)\n",
        "lib/a.ml": b"let x = 1\n",
        "lib/dune": b"(library (name a))\n",
    }
    s1 = store.take(v1, BuildState(GREEN), time=T0)
    assert s1 is not None and s1.changed == ("dune-project", "lib/a.ml", "lib/dune")
    v2 = {**v1, "lib/a.ml": b'let x = "1" + 1\n', "lib/b.ml": b"let y = 2\n"}
    s2 = store.take(v2, BuildState(RED, (ERROR,)), time=T0 + 60.5)
    assert s2 is not None and s2.changed == ("lib/a.ml", "lib/b.ml")
    v3 = {k: v for k, v in v2.items() if k != "lib/b.ml"} | {"lib/a.ml": b"let x = 2\n"}
    s3 = store.take(v3, BuildState(GREEN), time=T0 + 120)
    assert s3 is not None and s3.changed == ("lib/a.ml", "lib/b.ml")  # modified, deleted

    assert store.log() == [s1, s2, s3]  # ids, exact times, states with errors, changes
    assert [store.files(s.id) for s in (s1, s2, s3)] == [v1, v2, v3]
    assert store.path.is_relative_to(store.path.parent) and store.path.suffix == ".git"
    # A plain git repository: its history reads with git itself, dates are the snapshots'.
    assert git(store, "log", "--format=%ct", "snapshots").split() == [
        "1700000120",
        "1700000060",
        "1700000000",
    ]
    assert "red lib/shapes.ml:8: This expression has" in git(
        store, "log", "-1", "--format=%s", s2.id
    )
    fsck_clean(store)


def test_nothing_changed_is_no_snapshot(store: SnapshotStore) -> None:
    files = {"a.ml": b"let x = 1\n"}
    first = store.take(files, BuildState(GREEN), time=T0)
    assert first is not None
    assert not store.differs(files)
    assert store.take(dict(files), BuildState(RED, (ERROR,)), time=T0 + 1) is None
    # A fresh store object (another process) sees the same head.
    again = SnapshotStore(store.root, store.path.parent.parent)
    assert again.take(files, BuildState(GREEN)) is None
    assert again.differs({"a.ml": b"let x = 2\n"})
    assert [s.id for s in store.log()] == [first.id]
    assert store.take({}, BuildState(UNKNOWN)) is not None  # everything deleted is a change


def test_unchanged_files_are_stored_once(store: SnapshotStore) -> None:
    rng = random.Random(7)
    files = {f"lib/m{i}.ml": rng.randbytes(2_000).hex().encode() for i in range(20)}
    assert store.take(files, BuildState(GREEN), time=T0) is not None
    for i in range(10):
        files["lib/m0.ml"] = f"let v = {i}\n".encode()
        assert store.take(files, BuildState(GREEN), time=T0 + i + 1) is not None
    objects = git(store, "cat-file", "--batch-all-objects", "--batch-check=%(objecttype)")
    assert objects.split().count("blob") == 20 + 10  # one blob per distinct content


def test_secret_looking_names() -> None:
    secret = [
        ".env",
        ".env.local",
        "config/prod.env",
        "id_rsa",
        "keys/id_ed25519.pub",
        "key.pem",
        "certs/server.key",
        "store.p12",
        ".netrc",
        "credentials",
        "lib/secrets.ml",
        "lib/client_secret.ml",
        "lib/db_password.ml",
        "lib/credentials.ml",
        "secrets/config.ml",
        "lib/API_KEY.ml",
    ]
    plain = [
        "lib/shapes.ml",
        "lib/token.ml",
        "lib/lexer.mll",
        "lib/keyboard.ml",
        "lib/monkey.ml",
        "lib/auth.ml",
        "lib/environment.ml",
        "dune",
        "shapes.opam",
    ]
    assert [p for p in secret if not is_secret(p)] == []
    assert [p for p in plain if is_secret(p)] == []


def test_ignored_and_secret_files_are_never_stored(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    extra = {
        ".gitignore": "generated/\n*.bak.ml\n",
        "generated/gen.ml": "let g = 1\n",
        "lib/old.bak.ml": "let old = 1\n",
        "_build/default/lib/shapes.ml": "let copy = 1\n",
        "_opam/lib/pkg/pkg.ml": "let opam = 1\n",
        ".env": "API_KEY=hunter2\n",
        "id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\n",
        "key.pem": "-----BEGIN PRIVATE KEY-----\n",
        "lib/secrets.ml": 'let token = "hunter2"\n',
        "lib/.hidden/h.ml": "let h = 1\n",
        "README.md": "# shapes\n",
    }
    for rel, text in extra.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    files = source_files(root)
    assert sorted(files) == [
        "bin/dune",
        "bin/main.ml",
        "dune-project",
        "lib/dune",
        "lib/shapes.ml",
        "lib/shapes.mli",
    ]
    store = SnapshotStore(root, tmp_path / "data")
    assert store.take(files, BuildState(GREEN), time=T0) is not None
    # A caller that hands them over anyway (take filters again), and a buffer of each.
    everything = {rel: text.encode() for rel, text in extra.items()} | files
    everything["lib/shapes.ml"] += b"(* changed *)\n"
    assert store.take(everything, BuildState(GREEN), time=T0 + 1) is not None
    buffers = {rel: text + "(* open *)\n" for rel, text in extra.items()}
    buffers["lib/new.ml"] = "let fresh = 1\n"  # not on disk yet: a snapshot holds it
    with_buffers = source_files(root, buffers)
    assert set(with_buffers) == set(files) | {"lib/new.ml"}
    assert store.take(with_buffers, BuildState(GREEN), time=T0 + 2) is not None
    stored = stored_paths(store)
    never = set(extra) - {".gitignore", "README.md"}  # take keeps what is not forbidden
    assert stored & never == set()
    assert stored >= set(files) | {"lib/new.ml"}
    assert b"hunter2" not in b"".join(b for s in store.log() for b in store.files(s.id).values())


def test_a_dead_writers_lock_files_do_not_block(store: SnapshotStore) -> None:
    assert store.take({"a.ml": b"let x = 1\n"}, BuildState(GREEN), time=T0) is not None
    # What `git update-ref` and `git update-index` leave when killed in the middle.
    (store.path / "refs/heads/snapshots.lock").write_text("0" * 40 + "\n")
    (store.path / "ocaml-ai-ls-index-1234-abcd.lock").write_bytes(b"DIRC")
    assert store.take({"a.ml": b"let x = 2\n"}, BuildState(GREEN), time=T0 + 1) is not None
    assert len(store.log()) == 2 and not (store.path / "refs/heads/snapshots.lock").exists()
    fsck_clean(store)


def test_a_second_writer_waits_for_the_first(store: SnapshotStore) -> None:
    assert store.take({"a.ml": b"let x = 1\n"}, BuildState(GREEN), time=T0) is not None
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(store.path) + ".lock"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(StoreBusy):
            store.take({"a.ml": b"let x = 2\n"}, BuildState(GREEN), wait=0.2)
    finally:
        holder.kill()
        holder.wait()
    assert store.take({"a.ml": b"let x = 2\n"}, BuildState(GREEN), wait=5) is not None


HOLD_LOCK = textwrap.dedent(
    """
    import fcntl, sys, time
    fd = open(sys.argv[1], "a")
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(60)
    """
)

# -- kill -9 ------------------------------------------------------------------------

#: A snapshot of many files in a child process (its own process group); it says
#: `taking` just before the work starts.
TAKE_MANY = textwrap.dedent(
    """
    import random, sys
    from pathlib import Path
    from ocaml_ai_ls.snapshots.store import GREEN, BuildState, SnapshotStore
    root, data, seed = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    files = {f"lib/d{i // 100}/m{i}.ml": rng.randbytes(2000).hex().encode() for i in range(2000)}
    store = SnapshotStore(root, data)
    print("taking", flush=True)
    print(store.take(files, BuildState(GREEN)).id, flush=True)
    """
)


def _group_commands(pgid: int) -> list[str]:
    """The command lines of the processes in a process group (Linux /proc)."""
    found: list[str] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def _take_and_kill(store: SnapshotStore, seed: int, when: str | float) -> bool:
    """Start a big snapshot in a child and SIGKILL its whole process group (git children
    too) once a git command named `when` runs, or `when` seconds after it started;
    whether the snapshot completed first."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            TAKE_MANY,
            str(store.root),
            str(store.path.parent.parent),
            str(seed),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "taking\n"
        deadline = time.monotonic() + 30
        if isinstance(when, str):
            while child.poll() is None and time.monotonic() < deadline:
                if any(
                    c.startswith("git") and f" {when} " in c for c in _group_commands(child.pid)
                ):
                    break
                time.sleep(0.001)
        else:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=when)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    return child.returncode == 0


def test_kill_9_in_the_middle_of_a_snapshot_loses_at_most_that_snapshot(
    store: SnapshotStore,
) -> None:
    first = store.take({"lib/a.ml": b"let x = 1\n"}, BuildState(GREEN), time=T0)
    assert first is not None
    done = _take_and_kill(store, 1, "fast-import")  # while it writes the new files
    assert not done
    assert [s.id for s in store.log()] == [first.id]
    assert store.files(first.id) == {"lib/a.ml": b"let x = 1\n"}
    fsck_clean(store)
    # Killed at times spread over a whole snapshot (measured): every phase, likely.
    started = time.monotonic()
    assert _take_and_kill(store, 2, 60.0)
    whole = time.monotonic() - started
    kept = len(store.log())
    assert kept == 2
    for i, fraction in enumerate((0.2, 0.5, 0.8)):
        done = _take_and_kill(store, 10 + i, whole * fraction)
        log = store.log()
        # a finished take is kept; a killed one is kept or not: killed after the branch
        # moved but before the process exited, it is there though `done` is false
        assert len(log) in ((kept + 1,) if done else (kept, kept + 1)), (done, len(log), kept)
        assert log[0].id == first.id
        kept = len(log)
        fsck_clean(store)
    after = store.take({"lib/a.ml": b"let x = 3\n"}, BuildState(GREEN))
    assert after is not None and store.log()[-1] == after
    assert store.files(after.id) == {"lib/a.ml": b"let x = 3\n"}
    fsck_clean(store)


# -- gc -----------------------------------------------------------------------------


def test_gc_by_age_keeps_the_recent_chain(store: SnapshotStore) -> None:
    now = T0 + 40 * DAY
    snaps, versions = [], []
    for day in (0, 10, 20, 35, 39):
        files = {"a.ml": f"let day = {day}\n".encode(), "b.ml": b"let b = 1\n"}
        snap = store.take(files, BuildState(GREEN), time=T0 + day * DAY)
        assert snap is not None
        snaps.append(snap)
        versions.append(files)
    old_blob = git(store, "rev-parse", f"{snaps[0].id}:a.ml").strip()
    report = store.gc(max_age_days=25, max_megabytes=100, now=now)
    assert report.dropped == tuple(s.id for s in snaps[:2]) and report.kept == 3
    log = store.log()
    assert [(s.time, s.state, s.changed) for s in log] == [
        (s.time, s.state, s.changed) for s in snaps[2:]
    ]
    assert [store.files(s.id) for s in log] == versions[2:]
    assert log[-1].id != snaps[-1].id  # rewritten: the oldest kept one is a root now
    assert git(store, "rev-list", "--max-parents=0", "snapshots").split() == [log[0].id]
    assert (
        subprocess.run(
            ["git", "cat-file", "-e", old_blob], env={**os.environ, "GIT_DIR": str(store.path)}
        ).returncode
        != 0
    )
    assert report.bytes_after <= report.bytes_before
    fsck_clean(store)
    # Everything is old: the newest stays anyway; a take after gc goes on from it.
    assert store.gc(max_age_days=1, max_megabytes=100, now=now + 100 * DAY).kept == 1
    nxt = store.take({"a.ml": b"let day = 41\n"}, BuildState(GREEN), time=now + DAY)
    assert nxt is not None and nxt.changed == ("a.ml", "b.ml")
    assert [s.id for s in store.log()][-1] == nxt.id
    fsck_clean(store)


def test_gc_by_size_drops_the_oldest_until_it_fits(store: SnapshotStore) -> None:
    rng = random.Random(3)
    for i in range(8):  # 8 x 200 kB of incompressible content
        files = {"lib/big.ml": rng.randbytes(100_000).hex().encode(), "lib/a.ml": b"let a = 1\n"}
        assert store.take(files, BuildState(GREEN), time=T0 + i) is not None
    newest = store.log()[-1]
    report = store.gc(max_age_days=1000, max_megabytes=0.5, now=T0 + 10)
    assert report.bytes_before > 1_000_000
    assert report.bytes_after <= 0.5 * (1 << 20)
    assert 1 <= report.kept <= 5 and len(report.dropped) == 8 - report.kept
    log = store.log()
    assert len(log) == report.kept and log[-1].time == newest.time
    assert store.files(log[-1].id) == files
    fsck_clean(store)
    tiny = store.gc(max_age_days=1000, max_megabytes=0.001, now=T0 + 10)
    assert tiny.kept == 1 and store.log()[-1].time == newest.time
    fsck_clean(store)
