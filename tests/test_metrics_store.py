"""The metrics store: rows and outcomes written by the real writer thread, two
processes sharing one file, and every way the file can be unusable (the
generation never notices more than a queue put)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from ocaml_ai_ls.config import ENV_API_KEY, ENV_METRICS_DB, Settings
from ocaml_ai_ls.metrics.store import (
    GenerationRecord,
    MetricsStore,
    default_db_path,
    workspace_hash,
)

REPO = Path(__file__).resolve().parent.parent
#: A caller's record() must cost a queue put; this is generous for a loaded CI machine.
AT_ONCE_S = 0.05


def record(request_id: str = "r1", **changes: Any) -> GenerationRecord:
    """A plausible generation; `changes` override fields."""
    base: dict[str, Any] = {
        "request_id": request_id,
        "time": 1_750_000_000.0,
        "workspace": workspace_hash(Path("/tmp/project")),
        "provider": "openai",
        "model": "qwen2.5-coder:7b",
        "arm": "",
        "strategy": "search_replace",
        "prompt_tokens": 1200,
        "completion_tokens": 340,
        "context_ms": 12.5,
        "first_token_ms": 310.0,
        "model_ms": 2400.0,
        "parse_ms": 0.8,
        "apply_ms": 1.1,
        "verify_ms": 850.0,
        "total_ms": 3300.0,
        "candidates": 3,
        "applied_candidates": 2,
        "best_status": "ok",
        "repair_rounds": 0,
        "error": None,
    }
    base.update(changes)
    return GenerationRecord(**base)


def rows(path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM generations ORDER BY id")]
    finally:
        conn.close()


def timed_records(store: MetricsStore, records: list[GenerationRecord]) -> float:
    """The longest a caller waited in record()."""
    worst = 0.0
    for rec in records:
        start = time.perf_counter()
        store.record(rec)
        worst = max(worst, time.perf_counter() - start)
    return worst


def test_rows_are_written_and_read_back(tmp_path: Path) -> None:
    db = tmp_path / "deep" / "dir" / "metrics.sqlite3"  # the directory is created
    warnings: list[str] = []
    store = MetricsStore(db, warnings.append)
    first = record("r1")
    second = record("r2", best_status=None, candidates=0, applied_candidates=0, error="timeout")
    store.record(first)
    store.record(second)
    assert store.flush()
    store.close()
    assert warnings == []
    got = rows(db)
    assert [r["request_id"] for r in got] == ["r1", "r2"]
    for row, rec in zip(got, (first, second), strict=True):
        assert {k: row[k] for k in asdict(rec)} == asdict(rec)
        assert row["applied"] is None and row["accepted"] is None and row["outcome_time"] is None
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    indexes = [r[1] for r in conn.execute("PRAGMA index_list(generations)")]
    assert "generations_time" in indexes
    conn.close()


def test_outcomes_update_the_row(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    store = MetricsStore(db)
    store.record(record("r1"))
    store.record(record("r2"))
    # Queued right behind the record, before the writer got to it: it still lands.
    store.outcome("r1", applied=True)
    store.outcome("r1", accepted=False)
    store.outcome("r2", accepted=True)
    store.outcome("unknown", applied=True)  # nothing to update, nothing raised
    assert store.flush()
    store.close()
    r1, r2 = rows(db)
    assert (r1["applied"], r1["accepted"]) == (1, 0)
    assert (r2["applied"], r2["accepted"]) == (None, 1)
    assert r1["outcome_time"] is not None and r1["outcome_time"] >= r1["time"]


def test_outcomes_touch_only_this_stores_rows(tmp_path: Path) -> None:
    """Two servers may both number a request "1": each updates its own row."""
    db = tmp_path / "m.db"
    one, two = MetricsStore(db), MetricsStore(db)
    one.record(record("1", model="one"))
    assert one.flush()
    two.record(record("1", model="two"))
    assert two.flush()
    two.outcome("1", accepted=True)
    one.close()
    two.close()
    by_model = {r["model"]: r["accepted"] for r in rows(db)}
    assert by_model == {"one": None, "two": 1}


def test_prompts_are_kept_only_when_asked(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    store = MetricsStore(db)  # store_prompts defaults to off
    store.record(record("off", prompt="the prompt", answers='["answer"]'))
    assert store.flush()
    store.store_prompts = True  # telemetry.store_prompts turned on at run time
    store.record(record("on", prompt="the prompt", answers='["answer"]'))
    store.close()
    off, on = rows(db)
    assert (off["prompt"], off["answers"]) == (None, None)
    assert (on["prompt"], on["answers"]) == ("the prompt", '["answer"]')


def test_the_api_key_never_reaches_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sentinel = "sk-SENTINEL-4f1c9a7e0b2d"
    monkeypatch.setenv(ENV_API_KEY, sentinel)
    assert Settings().api_key() == sentinel  # the key is there to be leaked
    db = tmp_path / "m.db"
    store = MetricsStore(db, store_prompts=True)
    for i in range(50):
        store.record(
            record(
                f"r{i}",
                prompt=f"Make `area` total.\n(* request {i} *)",
                answers=json.dumps(["lib/shapes.ml\n<<<<<<< SEARCH\n=======\n>>>>>>> REPLACE"]),
                error="model: 401 Unauthorized" if i % 7 == 0 else None,
            )
        )
        store.outcome(f"r{i}", applied=True, accepted=i % 2 == 0)
    assert store.flush()
    # Read the files while the store is open (the WAL holds the rows) and after.
    files = lambda: [p for p in tmp_path.iterdir() if p.name.startswith("m.db")]  # noqa: E731
    while_open = b"".join(p.read_bytes() for p in files())
    store.close()
    after = b"".join(p.read_bytes() for p in files())
    assert len(rows(db)) == 50
    assert b"request 49" in after  # the prompts are in there, the key is not
    for blob in (while_open, after):
        assert sentinel.encode() not in blob
        assert sentinel.encode("utf-16-le") not in blob


def test_two_processes_share_one_file(tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite3"
    n = 300
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), name, str(n), "bulk", "a", "b"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for name in ("a", "b")
    ]
    outputs = [p.communicate(timeout=30) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert json.loads(out.splitlines()[-1]) == []  # no warnings: no row dropped
    got = [r["request_id"] for r in rows(db)]
    assert sorted(got) == sorted(f"{name}-{i}" for name in "ab" for i in range(n))
    switches = sum(1 for x, y in itertools.pairwise(got) if x[0] != y[0])
    assert switches > 20  # the two really wrote at the same time
    for name in "ab":  # each process's rows in its own order
        mine = [int(g.split("-")[1]) for g in got if g.startswith(name)]
        assert mine == sorted(mine)


def test_kill_9_mid_stream_loses_at_most_the_row_in_flight(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), "k", "100000", "confirm"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    confirmed = -1
    while confirmed < 40:
        line = proc.stdout.readline()
        assert line, "the writer died"
        confirmed = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    ids = [int(r[0].split("-")[1]) for r in conn.execute("SELECT request_id FROM generations")]
    conn.close()
    # Every row written before the kill is there, in order, with no gap.
    assert ids == list(range(len(ids)))
    assert len(ids) > confirmed


def test_a_file_that_is_not_a_database_is_left_alone(tmp_path: Path) -> None:
    for name, content in (
        ("text.db", b"these are notes, not a database\n" * 50),
        ("random.db", os.urandom(8192)),
    ):
        db = tmp_path / name
        db.write_bytes(content)
        before = sorted(p.name for p in tmp_path.iterdir())
        warnings: list[str] = []
        store = MetricsStore(db, warnings.append)
        worst = timed_records(store, [record(f"r{i}") for i in range(20)])
        store.outcome("r1", accepted=True)
        assert store.flush()
        store.close()
        assert worst < AT_ONCE_S
        assert len(warnings) == 1, warnings
        assert str(db) in warnings[0] and "not a SQLite database" in warnings[0]
        assert "delete or move it" in warnings[0]
        assert db.read_bytes() == content
        assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_an_unwritable_location_costs_one_warning(tmp_path: Path) -> None:
    """chmod is the test as a normal user; root writes through it, so there the
    directory cannot be created instead (its parent is a file)."""
    if os.geteuid() == 0:
        (tmp_path / "not-a-dir").write_text("a file")
        db = tmp_path / "not-a-dir" / "metrics.sqlite3"
        expected = "cannot create the directory"
    else:
        setup = MetricsStore(tmp_path / "ro" / "m.db")
        setup.record(record("before"))
        setup.close()
        db = tmp_path / "ro" / "m.db"
        db.chmod(0o444)
        db.parent.chmod(0o555)
        expected = "cannot write"
    try:
        warnings: list[str] = []
        store = MetricsStore(db, warnings.append)
        worst = timed_records(store, [record(f"r{i}") for i in range(20)])
        assert store.flush()
        store.close()
    finally:
        db.parent.chmod(0o755)
    assert worst < AT_ONCE_S
    assert len(warnings) == 1, warnings
    assert expected in warnings[0] and ENV_METRICS_DB in warnings[0]
    if os.geteuid() != 0:
        assert [r["request_id"] for r in rows(db)] == ["before"]


def test_a_file_locked_too_long_drops_the_row_not_the_generation(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    warnings: list[str] = []
    store = MetricsStore(db, warnings.append, busy_timeout=0.5)
    store.record(record("first"))
    assert store.flush()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # a long write elsewhere (a DB browser, say)
    try:
        worst = timed_records(store, [record("locked")])
        assert store.flush()  # waits out the busy timeout, then drops the row
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.record(record("after"))
    store.close()
    assert worst < AT_ONCE_S
    assert len(warnings) == 1 and "locked" in warnings[0], warnings
    assert [r["request_id"] for r in rows(db)] == ["first", "after"]


def test_a_full_queue_drops_rows_with_one_warning(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    warnings: list[str] = []
    store = MetricsStore(db, warnings.append, queue_size=5)
    store.record(record("first"))
    assert store.flush()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # the writer waits on its next row
    try:
        worst = timed_records(store, [record(f"r{i}") for i in range(30)])
    finally:
        holder.execute("ROLLBACK")  # within the busy timeout: the waiting row goes in
        holder.close()
    store.close()
    assert worst < AT_ONCE_S
    assert len(warnings) == 1 and "rows are dropped" in warnings[0], warnings
    assert 1 + 5 <= len(rows(db)) <= 1 + 6  # the queue, and the one the writer held


def test_a_raising_warn_callback_is_contained(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")

    def warn(message: str) -> None:
        raise RuntimeError("the editor is gone")

    store = MetricsStore(tmp_path / "file" / "m.db", warn)
    store.record(record())
    assert store.flush()
    store.close()
    store.record(record())  # after close: dropped, nothing raised
    store.outcome("r1", accepted=True)


def test_default_db_path_precedence(tmp_path: Path) -> None:
    env = {ENV_METRICS_DB: "/env/m.db", "XDG_DATA_HOME": "/xdg", "HOME": str(tmp_path)}
    assert default_db_path("/setting/m.db", env) == Path("/setting/m.db")
    assert default_db_path("~/m.db", env) == Path.home() / "m.db"
    assert default_db_path("", env) == Path("/env/m.db")
    del env[ENV_METRICS_DB]
    assert default_db_path("", env) == Path("/xdg/ocaml-ai-ls/metrics.sqlite3")
    env["XDG_DATA_HOME"] = "relative"  # not absolute: ignored, as the XDG spec says
    expected = Path.home() / ".local/share/ocaml-ai-ls/metrics.sqlite3"
    assert default_db_path("", env) == expected
    assert default_db_path("", {}) == expected


def test_workspace_hash_is_stable_and_hides_the_path(tmp_path: Path) -> None:
    root = tmp_path / "secret-project"
    root.mkdir()
    h = workspace_hash(root)
    assert h == workspace_hash(tmp_path / "secret-project" / ".." / "secret-project")
    assert len(h) == 16 and int(h, 16) >= 0
    assert "secret" not in h and h != workspace_hash(tmp_path)


#: A writer process: `bulk` records N rows, one a millisecond, then closes; `confirm`
#: flushes each row and prints its number once it is written.
WRITER = """
import json, sys, time
from pathlib import Path
from ocaml_ai_ls.metrics.store import GenerationRecord, MetricsStore

path, name, n, mode, *others = sys.argv[1:]
warnings = []
store = MetricsStore(Path(path), warnings.append)
Path(f"{path}.ready-{name}").touch()  # start together with the others, imports done
while not all(Path(f"{path}.ready-{o}").exists() for o in others):
    time.sleep(0.005)
for i in range(int(n)):
    store.record(GenerationRecord(
        request_id=f"{name}-{i}", time=time.time(), workspace="w", provider="openai",
        model="m", arm="", strategy="search_replace", prompt_tokens=1, completion_tokens=1,
        context_ms=1.0, first_token_ms=1.0, model_ms=1.0, parse_ms=1.0, apply_ms=1.0,
        verify_ms=1.0, total_ms=5.0, candidates=1, applied_candidates=1, best_status="ok",
        repair_rounds=0, error=None))
    if mode == "confirm":
        store.flush()
        print(i, flush=True)
    else:
        time.sleep(0.001)  # both processes' rows interleave
store.close()
print(json.dumps(warnings))
"""
