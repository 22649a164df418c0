"""`ocaml-ai-ls stats`: per model, arm or strategy, how generations went.

Per group: requests; `apply_rate`, the share of requests where at least one
answer's edit applied to the files (`applied_candidates >= 1`); `ok_rate`, the
share whose best candidate verified `ok`; `applied_rate`, the share the editor
applied (the server hears of every application, so no outcome counts as not
applied); `acceptance_rate`, accepted / (accepted + rejected) over the requests
whose user said either (None when none did), with its 95% Wilson score
interval; `p50_ms` / `p95_ms` of the whole generation (`total_ms`, linear
interpolation between ranks). Counting is done in SQL; percentiles in Python
over each group's sorted times.

The database is opened read-only, so `stats` can run beside live servers and
never alters (or creates) the file. A missing or unreadable file is a message
and exit status 1; a database with no rows in the period is an empty table
(`[]` with `--json`) and exit status 0.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import sys
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from ..config import ENV_METRICS_DB

#: What `--by` can group by (columns of the table `generations`).
BY = ("model", "arm", "strategy")
#: The standard normal quantile of 97.5%: a two-sided 95% interval.
Z95 = 1.959963984540054
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d*)?)\s*([smhdw])")


class StatsError(Exception):
    """The database cannot be read; the message says which file and why."""


def parse_since(text: str, now: float | None = None) -> float:
    """Epoch seconds from `7d`, `24h`, `30m`, `2w`, `90s` (ago) or an ISO date or time
    (local time unless it names a zone); ValueError otherwise."""
    value = text.strip().lower()
    match = _DURATION.fullmatch(value)
    if match:
        now = time.time() if now is None else now
        return now - float(match[1]) * _UNITS[match[2]]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise ValueError(
            f"expected a period like 7d, 24h, 30m, 2w or a date like 2026-05-01, got {text!r}"
        ) from None


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion: sound at small n and at 0% or 100%,
    where the normal approximation gives nonsense."""
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the edges
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def percentile(ordered: list[float], q: float) -> float | None:
    """The `q` quantile of sorted values, interpolated between ranks (numpy's default)."""
    if not ordered:
        return None
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _connect(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise StatsError(
            f"no metrics database at {path}: nothing has been recorded there yet (or "
            f"telemetry.enabled is off). Name the file with --db or {ENV_METRICS_DB}."
        )
    try:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2.0)
    except sqlite3.Error as exc:
        raise StatsError(f"cannot open {path}: {exc}") from None


def _rate(count: int, n: int) -> float | None:
    return count / n if n else None


def compute(path: Path, since: float | None, by: str) -> list[dict[str, Any]]:
    """One row per group of generations at or after `since` (epoch seconds; None: all),
    most requests first. Raises StatsError when the file cannot be read."""
    if by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}, got {by!r}")
    where, params = ("WHERE time >= ?", (since,)) if since is not None else ("", ())
    conn = _connect(path)
    try:
        counts = conn.execute(
            f"""SELECT {by},
                 count(*),
                 count(DISTINCT model), min(model),
                 count(DISTINCT arm), min(arm),
                 count(DISTINCT strategy), min(strategy),
                 sum(CASE WHEN applied_candidates > 0 THEN 1 ELSE 0 END),
                 sum(CASE WHEN best_status = 'ok' THEN 1 ELSE 0 END),
                 sum(CASE WHEN error IS NOT NULL THEN 1 ELSE 0 END),
                 sum(CASE WHEN applied = 1 THEN 1 ELSE 0 END),
                 sum(CASE WHEN accepted = 1 THEN 1 ELSE 0 END),
                 sum(CASE WHEN accepted = 0 THEN 1 ELSE 0 END)
               FROM generations {where} GROUP BY {by}""",
            params,
        ).fetchall()
        times: defaultdict[str, list[float]] = defaultdict(list)
        total_where = f"{where} AND" if where else "WHERE"
        for key, ms in conn.execute(
            f"SELECT {by}, total_ms FROM generations {total_where} total_ms IS NOT NULL", params
        ):
            times[key].append(ms)
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []  # a database no server has written a row to yet
        raise StatsError(f"cannot read {path}: {exc}") from None
    except sqlite3.Error as exc:
        raise StatsError(f"{path} is not a metrics database or is corrupt ({exc})") from None
    finally:
        conn.close()
    rows = []
    for key, n, *rest in counts:
        n_model, model, n_arm, arm, n_strategy, strategy = rest[:6]
        apply_ok, verified_ok, errors, applied, accepted, rejected = rest[6:]
        ordered = sorted(times.get(key, ()))
        judged = accepted + rejected
        interval = wilson(accepted, judged)
        rows.append(
            {
                "model": model if n_model == 1 else "*",
                "arm": arm if n_arm == 1 else "*",
                "strategy": strategy if n_strategy == 1 else "*",
                "requests": n,
                "errors": errors,
                "apply_rate": _rate(apply_ok, n),
                "ok_rate": _rate(verified_ok, n),
                "applied_rate": _rate(applied, n),
                "accepted": accepted,
                "rejected": rejected,
                "acceptance_rate": _rate(accepted, judged),
                "acceptance_ci": list(interval) if interval else None,
                "p50_ms": percentile(ordered, 0.5),
                "p95_ms": percentile(ordered, 0.95),
            }
        )
    rows.sort(key=lambda r: (-r["requests"], str(r[by])))
    return rows


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.0f}%"


def _acceptance(row: dict[str, Any]) -> str:
    rate, ci = row["acceptance_rate"], row["acceptance_ci"]
    if rate is None or ci is None:
        return "-"
    return f"{rate * 100:.0f}% [{ci[0] * 100:.0f}–{ci[1] * 100:.0f}%]"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


_HEADERS = (
    "model",
    "arm",
    "strategy",
    "requests",
    "apply",
    "ok",
    "applied",
    "accepted [95% CI]",
    "judged",
    "p50 ms",
    "p95 ms",
)
_LEFT = 3  # the group columns are text; the rest are numbers, aligned right


def format_table(rows: list[dict[str, Any]]) -> str:
    """An aligned text table: rates as percentages, the acceptance interval beside its rate."""
    cells = [
        [
            r["model"],
            r["arm"] or "-",
            r["strategy"],
            str(r["requests"]),
            _pct(r["apply_rate"]),
            _pct(r["ok_rate"]),
            _pct(r["applied_rate"]),
            _acceptance(r),
            str(r["accepted"] + r["rejected"]),
            _ms(r["p50_ms"]),
            _ms(r["p95_ms"]),
        ]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [list(_HEADERS), *cells]) for i in range(len(_HEADERS))]

    def line(values: list[str] | tuple[str, ...]) -> str:
        return "  ".join(
            v.ljust(w) if i < _LEFT else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    return "\n".join([line(_HEADERS), *(line(c) for c in cells)])


def run_stats(
    db: Path,
    since: float | None,
    by: str,
    as_json: bool,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """The `stats` command: print the table (or JSON rows); 1 when the file cannot be read."""
    try:
        rows = compute(db, since, by)
    except StatsError as exc:
        print(f"ocaml-ai-ls stats: {exc}", file=err)
        return 1
    if as_json:
        json.dump(rows, out, indent=2, ensure_ascii=False)
        out.write("\n")
        return 0
    period = f" since {datetime.fromtimestamp(since):%Y-%m-%d %H:%M}" if since is not None else ""
    if not rows:
        print(f"no generations recorded in {db}{period}", file=out)
        return 0
    total = sum(r["requests"] for r in rows)
    plural = "" if total == 1 else "s"
    print(f"{total} generation{plural} in {db}{period}, by {by}", file=out)
    print(format_table(rows), file=out)
    print(
        "apply: an answer's edit applied to the files · ok: the best one verified · "
        "applied: by the editor\naccepted: of the requests the user judged (judged)",
        file=out,
    )
    return 0
