"""The evaluation report: every figure against a value computed by hand (or published),
significance for a clearly different and a clearly equal pair, order independence,
and the files written."""

from __future__ import annotations

import io
import json
import math
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from ocaml_ai_ls.eval import stats
from ocaml_ai_ls.eval.report import build_report, markdown, read_attempts, write_report


def att(
    task: str,
    arm: str,
    sample: int,
    passed: bool,
    *,
    before: bool | None = None,
    applied: bool = True,
    parsed: bool = True,
    typechecked: bool | None = None,
    tests: bool | None = None,
    total: float | None = 100.0,
    tokens: tuple[int | None, int | None] = (100, 20),
    replayed: bool = False,
) -> dict[str, Any]:
    return {
        "task": task,
        "arm": arm,
        "sample": sample,
        "model": "m",
        "provider": "openai",
        "strategy": "search_replace",
        "replayed": replayed,
        "applied": applied,
        "parsed": parsed,
        "typechecked": passed if typechecked is None else typechecked,
        "tests": tests,
        "passed": passed,
        "passed_before_repair": passed if before is None else before,
        "repair_round": 0,
        "status": "ok" if passed else "type_error",
        "ms": {"total": total},
        "tokens": {"prompt": tokens[0], "completion": tokens[1]},
        "error": None,
        "time": 1000.0 + sample,
    }


def _close(actual: Any, expected: tuple[float, float] | list[float], tol: float = 1e-4) -> None:
    assert actual is not None
    assert list(actual) == pytest.approx(list(expected), abs=tol)


# --- the statistics ----------------------------------------------------------------


def test_wilson_known_values() -> None:
    _close(stats.wilson(8, 10), (0.4902, 0.9433))
    _close(stats.wilson(5, 10), (0.2366, 0.7634))
    _close(stats.wilson(0, 10), (0.0, 0.2775))
    _close(stats.wilson(2, 5), (0.1176, 0.7693))
    assert stats.wilson(0, 0) is None


def test_pass_at_k_estimator() -> None:
    assert stats.pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert stats.pass_at_k(5, 2, 3) == pytest.approx(1 - 1 / 10)  # 1 - C(3,3)/C(5,3)
    assert stats.pass_at_k(5, 0, 3) == 0.0
    assert stats.pass_at_k(5, 3, 3) == 1.0  # fewer than k failures: a pass is certain
    assert stats.pass_at_k(2, 1, 3) is None  # fewer samples than k


def test_newcombe_unpaired_published_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, example 56/70 vs 48/80, method 10.
    _close(stats.newcombe_unpaired(56, 70, 48, 80), (0.0524, 0.3339))


def test_two_proportion_z_test_by_hand() -> None:
    pooled = 104 / 150
    z = (56 / 70 - 48 / 80) / math.sqrt(pooled * (1 - pooled) * (1 / 70 + 1 / 80))
    assert z == pytest.approx(2.6502, abs=1e-4)
    assert stats.two_proportion_p(56, 70, 48, 80) == pytest.approx(0.00805, abs=1e-5)
    assert stats.two_proportion_p(5, 5, 3, 3) == 1.0
    assert stats.two_proportion_p(1, 0, 1, 1) is None


def test_newcombe_paired_by_hand() -> None:
    # 5 pass both, 2 only after repair, 0 only before, 3 neither (n = 10).
    p1, p2 = 0.7, 0.5
    (l1, u1), (l2, u2) = (0.396768, 0.892208), (0.236593, 0.763407)  # Wilson 7/10, 5/10
    phi = (5 * 3 - 2 * 0 - 10 / 2) / math.sqrt(7 * 3 * 5 * 5)  # continuity-corrected
    low = (p1 - p2) - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    high = (p1 - p2) + math.sqrt((p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2)
    _close(stats.newcombe_paired(5, 2, 0, 3), (low, high))
    assert low < 0 < high  # 2 discordant pairs at n = 10: not significant (McNemar p = 0.5)
    ci = stats.newcombe_paired(4, 0, 0, 6)
    assert ci is not None and ci[0] < 0 < ci[1]  # no change: the interval straddles 0


def test_sign_flip_test() -> None:
    assert stats.sign_flip_p([1, 1, 1, 1, 1]) == pytest.approx(2 / 32)
    assert stats.sign_flip_p([1, 1, 1, -1, 0, 0]) == pytest.approx(10 / 16)
    assert stats.sign_flip_p([0, 0]) == 1.0
    assert stats.sign_flip_p([1.0] * 20) == pytest.approx(1 / 10001)  # sampled, seeded


def test_quantile_interval_order_statistics() -> None:
    values = [float(v) for v in range(1, 21)]
    assert stats.quantile_ci(values, 0.5) == (6.0, 15.0)  # the textbook ranks for n = 20
    ten = [float(v) for v in range(100, 1001, 100)]
    assert stats.quantile_ci(ten, 0.5) == (200.0, 900.0)  # ranks 2 and 9 for n = 10
    assert stats.quantile_ci(ten, 0.95) == (800.0, 1000.0)  # too few for 95%: the max
    assert stats.quantile_ci([], 0.5) is None


def test_bootstrap_interval() -> None:
    assert stats.bootstrap_mean_ci([0.3, 0.3, 0.3]) == (0.3, 0.3)
    assert stats.bootstrap_mean_ci([]) is None
    assert stats.bootstrap_mean_ci([0.5]) is None  # one task: nothing to resample
    low, high = stats.bootstrap_mean_ci([500.0, 600.0]) or (0, 0)
    assert (low, high) == (500.0, 600.0)  # a mean of two values resampled
    values = [1.0] * 30 + [0.0] * 70
    ci = stats.bootstrap_mean_ci(values)
    assert ci == stats.bootstrap_mean_ci(list(values))  # seeded
    normal = 1.959964 * math.sqrt(0.3 * 0.7 / 100)
    _close(ci, (0.3 - normal, 0.3 + normal), tol=0.02)


# --- the report --------------------------------------------------------------------


def _one_arm() -> list[dict[str, Any]]:
    """Task t1 (with tests): 5 samples, 2 pass. Task t2 (no tests): 5 samples, all
    pass, 2 of them only after a repair round. 8 of 10 applied, 5 parsed."""
    out = []
    for s in range(5):
        passed = s < 2
        out.append(
            att(
                "t1",
                "a",
                s,
                passed,
                applied=s < 3,
                parsed=s < 3,
                tests=passed,
                typechecked=s < 3,
                total=100.0 * (s + 1),
            )
        )
    for s in range(5):
        out.append(
            att(
                "t2",
                "a",
                s,
                True,
                before=s >= 2,
                parsed=s < 2,
                total=100.0 * (s + 6),
                tokens=(100, None),
            )
        )
    return out


def test_one_arm_figures() -> None:
    report = build_report(_one_arm(), k=3)
    assert report["arms"] == ["a"] and report["differences"] == []
    a = report["per_arm"]["a"]
    assert (a["tasks"], a["attempts"], a["errors"]) == (2, 10, 0)
    assert a["samples_per_task"] == {"min": 5, "max": 5}
    rates = a["rates"]
    assert (rates["apply"]["successes"], rates["apply"]["n"]) == (8, 10)
    _close(rates["apply"]["ci"], (0.4902, 0.9433))
    assert rates["parse"]["rate"] == 0.5
    _close(rates["parse"]["ci"], (0.2366, 0.7634))
    assert rates["typecheck"]["rate"] == 0.8
    assert (rates["tests"]["successes"], rates["tests"]["n"]) == (2, 5)  # t1 only
    _close(rates["tests"]["ci"], (0.1176, 0.7693))
    assert rates["pass"]["rate"] == pytest.approx(0.7)
    _close(rates["pass"]["ci"], (0.3968, 0.8922))
    # pass@1: (0.4 + 1) / 2; pass@3: (0.9 + 1) / 2.
    assert a["pass_at_1"]["value"] == pytest.approx(0.7)
    assert a["pass_at_k"] == {
        "k": 3,
        "value": pytest.approx(0.95),
        "ci": [pytest.approx(0.9), pytest.approx(1.0)],
        "tasks": 2,
    }
    gain = a["repair_gain"]
    assert (gain["fixed"], gain["broken"], gain["n"]) == (2, 0, 10)
    assert gain["value"] == pytest.approx(0.2)
    assert (gain["before"], gain["after"]) == (pytest.approx(0.5), pytest.approx(0.7))
    _close(gain["ci"], stats.newcombe_paired(5, 2, 0, 3) or (0, 0))
    lat = a["latency_ms"]
    assert lat["n"] == 10
    assert lat["p50"] == {"value": pytest.approx(550.0), "ci": [200.0, 900.0]}
    assert lat["p95"] == {"value": pytest.approx(955.0), "ci": [800.0, 1000.0]}
    # t1: 5 × (100 + 20) = 600; t2: 5 × 100 = 500 (completion unknown).
    assert a["tokens_per_task"] == {"value": 550.0, "ci": [500.0, 600.0], "tasks": 2}
    assert a["statuses"] == {"ok": 7, "type_error": 3}
    assert a["replayed"] is False and report["replayed"] is False


def test_pass_at_k_needs_k_samples() -> None:
    report = build_report(_one_arm(), k=6)
    assert report["per_arm"]["a"]["pass_at_k"] == {"k": 6, "value": None, "ci": None, "tasks": 0}
    with pytest.raises(ValueError):
        build_report(_one_arm(), k=0)


def _pair(good: str, bad: str, equal: bool) -> list[dict[str, Any]]:
    out = []
    for t in range(20):
        out.append(att(f"t{t:02}", good, 0, True))
        out.append(att(f"t{t:02}", bad, 0, equal))
    return out


def test_clearly_different_arms_are_significant() -> None:
    report = build_report(_pair("new", "base", equal=False), k=1, arms=["base", "new"])
    assert report["arms"] == ["base", "new"]
    [diff] = report["differences"]
    assert (diff["arm"], diff["baseline"]) == ("new", "base")
    rate = diff["pass_rate"]
    assert rate["diff"] == 1.0 and rate["significant"] is True
    assert rate["p_value"] < 1e-6
    _close(rate["ci"], stats.newcombe_unpaired(20, 20, 0, 20) or (0, 0))
    p1 = diff["pass_at_1"]
    assert p1 == {
        "diff": 1.0,
        "ci": [1.0, 1.0],
        "p_value": pytest.approx(1 / 10001),
        "significant": True,
        "tasks": 20,
    }


def test_equal_arms_are_not_significant() -> None:
    report = build_report(_pair("b", "a", equal=True), k=1)
    [diff] = report["differences"]
    assert diff["pass_rate"]["diff"] == 0.0 and diff["pass_rate"]["p_value"] == 1.0
    assert diff["pass_rate"]["significant"] is False
    assert diff["pass_at_1"]["diff"] == 0.0 and diff["pass_at_1"]["p_value"] == 1.0
    assert diff["pass_at_1"]["significant"] is False


def test_same_report_for_any_order_and_repeats() -> None:
    attempts = _one_arm() + _pair("b", "c", equal=False)
    report = build_report(attempts, k=2)
    shuffled = list(attempts)
    random.Random(7).shuffle(shuffled)
    older = dict(attempts[0], passed=False, time=1.0)  # an earlier record of the same key
    again = build_report([older, *shuffled], k=2)
    assert again.pop("repeats_dropped") == 1
    report.pop("repeats_dropped")
    assert json.dumps(again, sort_keys=True) == json.dumps(report, sort_keys=True)
    assert report["arms"] == ["a", "b", "c"]
    assert [d["arm"] for d in report["differences"]] == ["b", "c"]


def test_files_written(tmp_path: Path) -> None:
    attempts = _one_arm() + [att("t1", "replay", s, s == 0, replayed=True) for s in range(3)]
    report = build_report(attempts, k=3)
    paths = write_report(report, tmp_path / "out")
    assert [p.name for p in paths] == ["report.json", "report.md", "rates.png"]
    assert json.loads(paths[0].read_text()) == json.loads(json.dumps(report))
    md = paths[1].read_text()
    assert "| metric | a | replay |" in md
    assert "| pass rate | 70% [40–89%] | 33% [6–79%] |" in md
    assert "| pass@3 | 95% [90–100%] |" in md
    assert "| repair gain | +20 pp [" in md
    assert "| latency p50 | 550 ms [200–900] |" in md
    assert "**Replayed:** answers of `replay`" in md
    assert "| replay vs a | pass rate |" in md
    assert "| pass@1 | 70% [40–100%] | 33% |" in md  # one task: no interval
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "replayed" not in markdown(build_report(_one_arm(), k=1)).split("| replayed |")[0]


def test_chart_skipped_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    err = io.StringIO()
    paths = write_report(build_report(_one_arm(), k=1), tmp_path, err=err)
    assert [p.name for p in paths] == ["report.json", "report.md"]
    assert "matplotlib is not installed" in err.getvalue()


def test_empty_report(tmp_path: Path) -> None:
    report = build_report([], k=1)
    assert report["arms"] == [] and report["per_arm"] == {}
    assert "No attempts." in markdown(report)


def test_read_attempts_skips_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "attempts.jsonl"
    lines = [json.dumps(a) for a in _one_arm()[:2]]
    path.write_text("\n".join(lines) + '\n{"task": "t1", "ar')
    assert len(read_attempts(path)) == 2
    path.write_text("{bad\n" + "\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=":1: not JSON"):
        read_attempts(path)
