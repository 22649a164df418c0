"""`ocaml-ai-ls stats`: figures from a database the store fills with known rows,
checked against sums done by hand, and the command's table, JSON and errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ocaml_ai_ls.metrics.stats import compute, parse_since, percentile, wilson
from ocaml_ai_ls.metrics.store import MetricsStore
from tests.test_metrics_store import record

HOUR, DAY = 3600.0, 86400.0
NOW = time.time()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three kinds of generation over two weeks:

    - qwen, arm a, search_replace: 10 in the last day, total 100..1000 ms; 8 have an
      edit that applied, 6 verified ok, the last failed ("timeout"); the editor
      applied 7; the user accepted 6 and rejected 2.
    - qwen, arm b, whole_file: 2 two days ago, 300 and 500 ms, both applied to
      the files and ok, both accepted.
    - gpt, arm b, unified_diff: 4 from 8 to 11 days ago, 50, 60, 70 ms and one
      unknown; each applied, none ok; no outcome known.
    """
    path = tmp_path_factory.mktemp("stats") / "metrics.sqlite3"
    store = MetricsStore(path)
    for i in range(10):
        store.record(
            record(
                f"a{i}",
                time=NOW - i * HOUR,
                model="qwen",
                arm="a",
                strategy="search_replace",
                total_ms=100.0 * (i + 1),
                applied_candidates=1 if i < 8 else 0,
                candidates=0 if i == 9 else 3,
                best_status="ok" if i < 6 else ("type_error" if i < 9 else None),
                error="timeout" if i == 9 else None,
            )
        )
        if i < 7:
            store.outcome(f"a{i}", applied=True)
        if i < 8:
            store.outcome(f"a{i}", accepted=i < 6)
    for i, ms in enumerate((300.0, 500.0)):
        store.record(
            record(
                f"c{i}",
                time=NOW - 2 * DAY,
                model="qwen",
                arm="b",
                strategy="whole_file",
                total_ms=ms,
                applied_candidates=1,
                best_status="ok",
            )
        )
        store.outcome(f"c{i}", accepted=True)
    for i, maybe_ms in enumerate((50.0, 60.0, 70.0, None)):
        store.record(
            record(
                f"g{i}",
                time=NOW - (8 + i) * DAY,
                provider="anthropic",
                model="gpt",
                arm="b",
                strategy="unified_diff",
                total_ms=maybe_ms,
                applied_candidates=1,
                best_status="type_error",
            )
        )
    store.close()
    return path


def by_key(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {r[key]: r for r in rows}


def test_by_model_every_figure(db: Path) -> None:
    rows = compute(db, None, "model")
    assert [r["model"] for r in rows] == ["qwen", "gpt"]  # most requests first
    qwen, gpt = rows
    assert qwen == {
        "model": "qwen",
        "arm": "*",  # two arms in the group
        "strategy": "*",
        "requests": 12,
        "errors": 1,
        "apply_rate": pytest.approx(10 / 12),
        "ok_rate": pytest.approx(8 / 12),
        "applied_rate": pytest.approx(7 / 12),
        "accepted": 8,
        "rejected": 2,
        "acceptance_rate": pytest.approx(0.8),
        # Wilson 95% for 8 of 10 (as statsmodels' proportion_confint(8, 10, method="wilson")).
        "acceptance_ci": [pytest.approx(0.49016, abs=1e-5), pytest.approx(0.94332, abs=1e-5)],
        # 100..1000 with 300 and 500: 100 200 300 300 400 500 500 600 700 800 900 1000
        "p50_ms": pytest.approx(500.0),  # rank 5.5
        "p95_ms": pytest.approx(945.0),  # rank 10.45: 900 + 0.45 * 100
    }
    assert gpt == {
        "model": "gpt",
        "arm": "b",
        "strategy": "unified_diff",
        "requests": 4,
        "errors": 0,
        "apply_rate": 1.0,
        "ok_rate": 0.0,
        "applied_rate": 0.0,
        "accepted": 0,
        "rejected": 0,
        "acceptance_rate": None,  # nobody said
        "acceptance_ci": None,
        "p50_ms": pytest.approx(60.0),  # of 50 60 70: the unknown time is left out
        "p95_ms": pytest.approx(69.0),  # rank 1.9
    }


def test_by_arm_and_by_strategy(db: Path) -> None:
    arms = by_key(compute(db, None, "arm"), "arm")
    assert set(arms) == {"a", "b"}
    assert arms["a"]["requests"] == 10 and arms["a"]["model"] == "qwen"
    b = arms["b"]
    assert (b["requests"], b["model"], b["strategy"]) == (6, "*", "*")
    assert b["ok_rate"] == pytest.approx(2 / 6)
    assert (b["accepted"], b["rejected"]) == (2, 0)
    assert b["acceptance_ci"] == [pytest.approx(0.34238, abs=1e-5), 1.0]  # Wilson for 2 of 2
    strategies = by_key(compute(db, None, "strategy"), "strategy")
    assert {s: r["requests"] for s, r in strategies.items()} == {
        "search_replace": 10,
        "whole_file": 2,
        "unified_diff": 4,
    }
    sr = strategies["search_replace"]
    assert (sr["model"], sr["arm"], sr["apply_rate"], sr["ok_rate"]) == ("qwen", "a", 0.8, 0.6)
    assert sr["acceptance_rate"] == pytest.approx(0.75)
    assert sr["p50_ms"] == pytest.approx(550.0) and sr["p95_ms"] == pytest.approx(955.0)


def test_since_keeps_the_recent_rows(db: Path) -> None:
    week = compute(db, NOW - 7 * DAY, "model")
    assert [(r["model"], r["requests"]) for r in week] == [("qwen", 12)]
    day = compute(db, NOW - 1 * DAY, "model")
    assert [(r["model"], r["requests"], r["arm"]) for r in day] == [("qwen", 10, "a")]
    assert compute(db, NOW + 60, "model") == []


def test_wilson_against_known_values() -> None:
    """Against statsmodels' proportion_confint(k, n, method="wilson")."""
    assert wilson(0, 0) is None
    for k, n, low, high in (
        (8, 10, 0.490162, 0.943318),
        (0, 10, 0.0, 0.277533),
        (10, 10, 0.722467, 1.0),
        (50, 100, 0.403832, 0.596168),
    ):
        interval = wilson(k, n)
        assert interval is not None
        assert interval[0] == pytest.approx(low, abs=1e-6)
        assert interval[1] == pytest.approx(high, abs=1e-6)
    none, every = wilson(0, 10), wilson(10, 10)
    assert none is not None and none[0] == 0.0  # exactly, not -1e-17
    assert every is not None and every[1] == 1.0


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([float(v) for v in range(1, 101)], 0.95) == pytest.approx(95.05)


def test_parse_since() -> None:
    now = 1_750_000_000.0
    assert parse_since("7d", now) == now - 7 * DAY
    assert parse_since("24h", now) == now - DAY
    assert parse_since("30m", now) == now - 1800
    assert parse_since("2w", now) == now - 14 * DAY
    assert parse_since(" 1.5H ", now) == now - 1.5 * HOUR
    assert parse_since("2026-05-01") == datetime(2026, 5, 1).timestamp()  # local midnight
    assert parse_since("2026-05-01T12:00:00+00:00") == 1_777_636_800.0
    for bad in ("", "7", "d", "7y", "-1d", "last week", "2026-13-01"):
        with pytest.raises(ValueError, match="expected a period like 7d"):
            parse_since(bad, now)


def test_a_database_without_rows_gives_no_rows(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite3"
    empty.write_bytes(b"")  # an empty file is an empty SQLite database
    assert compute(empty, None, "model") == []


def stats(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocaml_ai_ls", "stats", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_cli_json_is_compute(db: Path) -> None:
    done = stats("--db", str(db), "--json", "--by", "arm")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == compute(db, None, "arm")
    done = stats("--db", str(db), "--json", "--since", "7d")
    assert [(r["model"], r["requests"]) for r in json.loads(done.stdout)] == [("qwen", 12)]


def test_cli_table(db: Path) -> None:
    done = stats("--db", str(db))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"16 generations in {db}, by model")
    header = lines[1].split()
    assert header[:6] == ["model", "arm", "strategy", "requests", "apply", "ok"]
    qwen = lines[2]
    # requests, apply 10/12, ok 8/12, editor applied 7/12, accepted 8/10 [Wilson], p50, p95
    assert qwen.split()[:6] == ["qwen", "*", "*", "12", "83%", "67%"]
    assert " 58% " in qwen and "80% [49–94%]" in qwen
    assert qwen.split()[-3:] == ["10", "500", "945"]
    gpt = lines[3].split()
    assert gpt[:7] == ["gpt", "b", "unified_diff", "4", "100%", "0%", "0%"]
    assert gpt[-4:] == ["-", "0", "60", "69"]  # no acceptance known
    week = stats("--db", str(db), "--since", "7d", "--by", "strategy")
    assert week.returncode == 0
    assert "12 generations" in week.stdout and "since" in week.stdout
    assert "unified_diff" not in week.stdout


def test_cli_errors(tmp_path: Path) -> None:
    bad = stats("--db", str(tmp_path / "m.db"), "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr and "7d" in bad.stderr
    missing = stats("--db", str(tmp_path / "none.sqlite3"))
    assert missing.returncode == 1 and "no metrics database at" in missing.stderr
    assert not (tmp_path / "none.sqlite3").exists()  # stats never creates the file
    notes = tmp_path / "notes.db"
    notes.write_text("not a database\n" * 20)
    corrupt = stats("--db", str(notes), "--json")
    assert corrupt.returncode == 1 and "not a metrics database" in corrupt.stderr
    assert notes.read_text() == "not a database\n" * 20
