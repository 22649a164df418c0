"""The evaluation report: per arm, side by side, from the attempt records the runner
appends to `attempts.jsonl` (one per task, arm and sample).

Per arm: tasks and attempts; the apply, parse, type-check, test and pass rates (over
attempts; the test rate over the attempts of tasks with tests), each with its 95%
Wilson interval; pass@1 and pass@k (the unbiased estimator, averaged over tasks, with
a bootstrap interval over tasks); the repair gain (the pass rate after the repair
rounds minus the rate of the round-0 candidates, a paired difference over attempts,
with Newcombe's paired interval); latency p50 and p95 of `ms.total` with order-statistic
intervals; tokens per task (prompt plus completion of all its attempts, averaged over
tasks, bootstrap interval); whether any answer was replayed.

Each arm after the first is compared with the first: the pass rate (pooled z-test;
Newcombe's interval) and pass@1 (paired over the tasks both ran: bootstrap interval and
sign-flip permutation test), significant when p < 0.05. See `stats.py` for the methods.

Deterministic: the same attempts in any order give the same report (records are
sorted, bootstraps seeded). A (task, arm, sample) recorded twice counts once: the
latest record wins.
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from . import stats

#: (report key, attempt field, label) of the rates, in the report's order.
RATES = (
    ("apply", "applied", "apply rate"),
    ("parse", "parsed", "parse rate"),
    ("typecheck", "typechecked", "type-check rate"),
    ("tests", "tests", "test pass rate"),
    ("pass", "passed", "pass rate"),
)
SIGNIFICANCE = 0.05
SEED = 0

METHODS = {
    "rates": "proportion over attempts (tests: over attempts of tasks with tests); "
    "95% Wilson score interval",
    "pass_at_k": "unbiased estimator 1 - C(n-c,k)/C(n,k) per task (Chen et al. 2021), "
    "averaged over tasks with at least k samples; 95% percentile bootstrap over tasks "
    f"({stats.BOOTSTRAP} seeded resamples)",
    "repair_gain": "pass rate minus pass rate of round-0 candidates, paired per attempt; "
    "Newcombe's paired score interval (1998, method 10)",
    "latency": "p50/p95 of ms.total, linear interpolation between ranks; distribution-free "
    "order-statistic interval (binomial), clamped to the sample's range when n is small",
    "tokens_per_task": "prompt + completion tokens of all a task's attempts, averaged over "
    f"tasks; 95% percentile bootstrap over tasks ({stats.BOOTSTRAP} seeded resamples)",
    "pass_rate_difference": "arm minus baseline; Newcombe's hybrid score interval; "
    "two-sided pooled two-proportion z-test",
    "pass_at_1_difference": "arm minus baseline, paired over the tasks both ran; 95% "
    "percentile bootstrap over tasks; two-sided sign-flip permutation test (exact up to "
    f"{stats.EXACT_FLIPS} non-zero differences, else {stats.PERMUTATIONS} seeded flips)",
}


def _flag(value: Any) -> bool:
    return value is True


def _canonical(attempts: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Attempts sorted by (arm, task, sample), one per key (the latest `time` wins, ties
    broken by content); how many repeats were dropped."""
    best: dict[tuple[str, str, int], tuple[float, str, dict[str, Any]]] = {}
    for raw in attempts:
        record = dict(raw)
        key = (
            str(record.get("arm", "")),
            str(record.get("task", "")),
            int(record.get("sample") or 0),
        )
        time = record.get("time")
        rank = (
            float(time) if isinstance(time, int | float) else 0.0,
            json.dumps(record, sort_keys=True),
        )
        if key not in best or rank > best[key][:2]:
            best[key] = (*rank, record)
    ordered = [best[key][2] for key in sorted(best)]
    return ordered, len(attempts) - len(ordered)


def _proportion(successes: int, n: int) -> dict[str, Any]:
    ci = stats.wilson(successes, n)
    return {
        "rate": successes / n if n else None,
        "successes": successes,
        "n": n,
        "ci": list(ci) if ci else None,
    }


def _by_task(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        out[str(record.get("task", ""))].append(record)
    return dict(sorted(out.items()))


def _pass_at(tasks: Mapping[str, Sequence[Mapping[str, Any]]], k: int) -> dict[str, Any]:
    values = []
    for records in tasks.values():
        value = stats.pass_at_k(len(records), sum(_flag(r.get("passed")) for r in records), k)
        if value is not None:
            values.append(value)
    ci = stats.bootstrap_mean_ci(values, seed=SEED)
    return {
        "k": k,
        "value": math.fsum(values) / len(values) if values else None,
        "ci": list(ci) if ci else None,
        "tasks": len(values),
    }


def _repair_gain(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    both = fixed = broken = neither = 0
    for r in records:
        after, before = _flag(r.get("passed")), _flag(r.get("passed_before_repair"))
        if after and before:
            both += 1
        elif after:
            fixed += 1
        elif before:
            broken += 1
        else:
            neither += 1
    n = len(records)
    ci = stats.newcombe_paired(both, fixed, broken, neither)
    return {
        "value": (fixed - broken) / n if n else None,
        "ci": list(ci) if ci else None,
        "before": (both + broken) / n if n else None,
        "after": (both + fixed) / n if n else None,
        "fixed": fixed,
        "broken": broken,
        "n": n,
    }


def _latency(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    totals = []
    for r in records:
        ms = r.get("ms")
        total = ms.get("total") if isinstance(ms, Mapping) else None
        if isinstance(total, int | float) and not isinstance(total, bool):
            totals.append(float(total))
    totals.sort()
    out: dict[str, Any] = {"n": len(totals)}
    for name, q in (("p50", 0.5), ("p95", 0.95)):
        ci = stats.quantile_ci(totals, q)
        out[name] = {"value": stats.percentile(totals, q), "ci": list(ci) if ci else None}
    return out


def _attempt_tokens(record: Mapping[str, Any]) -> int | None:
    tokens = record.get("tokens")
    if not isinstance(tokens, Mapping):
        return None
    counts = [v for v in (tokens.get("prompt"), tokens.get("completion")) if isinstance(v, int)]
    return sum(counts) if counts else None


def _tokens(tasks: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    per_task = []
    for records in tasks.values():
        counts = [c for c in map(_attempt_tokens, records) if c is not None]
        if counts:
            per_task.append(float(sum(counts)))
    ci = stats.bootstrap_mean_ci(per_task, seed=SEED)
    return {
        "value": math.fsum(per_task) / len(per_task) if per_task else None,
        "ci": list(ci) if ci else None,
        "tasks": len(per_task),
    }


def _values(records: Sequence[Mapping[str, Any]], key: str) -> list[str]:
    return sorted({str(r[key]) for r in records if r.get(key) is not None})


def arm_report(records: Sequence[Mapping[str, Any]], k: int) -> dict[str, Any]:
    """The figures of one arm's attempts (see the module docstring)."""
    tasks = _by_task(records)
    rates: dict[str, Any] = {}
    for key, field, _ in RATES:
        if field == "tests":
            judged = [r for r in records if r.get("tests") is not None]
            rates[key] = _proportion(sum(_flag(r.get("tests")) for r in judged), len(judged))
        else:
            rates[key] = _proportion(sum(_flag(r.get(field)) for r in records), len(records))
    samples = [len(v) for v in tasks.values()]
    return {
        "models": _values(records, "model"),
        "providers": _values(records, "provider"),
        "strategies": _values(records, "strategy"),
        "tasks": len(tasks),
        "attempts": len(records),
        "samples_per_task": {"min": min(samples), "max": max(samples)} if samples else None,
        "errors": sum(1 for r in records if r.get("error")),
        "replayed": any(_flag(r.get("replayed")) for r in records),
        "rates": rates,
        "pass_at_1": _pass_at(tasks, 1),
        "pass_at_k": _pass_at(tasks, k),
        "repair_gain": _repair_gain(records),
        "latency_ms": _latency(records),
        "tokens_per_task": _tokens(tasks),
        "statuses": dict(sorted(Counter(str(r.get("status")) for r in records).items())),
    }


def compare(
    baseline: Sequence[Mapping[str, Any]], arm: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """`arm` minus `baseline`: the pass rate (independent proportions) and pass@1
    (paired over shared tasks)."""
    x1, n1 = sum(_flag(r.get("passed")) for r in arm), len(arm)
    x0, n0 = sum(_flag(r.get("passed")) for r in baseline), len(baseline)
    p_rate = stats.two_proportion_p(x1, n1, x0, n0)
    ci_rate = stats.newcombe_unpaired(x1, n1, x0, n0)
    tasks_arm, tasks_base = _by_task(arm), _by_task(baseline)
    shared = sorted(set(tasks_arm) & set(tasks_base))

    def share(records: Sequence[Mapping[str, Any]]) -> float:
        return sum(_flag(r.get("passed")) for r in records) / len(records)

    diffs = [share(tasks_arm[t]) - share(tasks_base[t]) for t in shared]
    ci_pass = stats.bootstrap_mean_ci(diffs, seed=SEED)
    p_pass = stats.sign_flip_p(diffs, seed=SEED) if diffs else None
    return {
        "pass_rate": {
            "diff": x1 / n1 - x0 / n0 if n1 and n0 else None,
            "ci": list(ci_rate) if ci_rate else None,
            "p_value": p_rate,
            "significant": p_rate is not None and p_rate < SIGNIFICANCE,
        },
        "pass_at_1": {
            "diff": math.fsum(diffs) / len(diffs) if diffs else None,
            "ci": list(ci_pass) if ci_pass else None,
            "p_value": p_pass,
            "significant": p_pass is not None and p_pass < SIGNIFICANCE,
            "tasks": len(diffs),
        },
    }


def build_report(
    attempts: Sequence[Mapping[str, Any]], k: int, arms: Sequence[str] | None = None
) -> dict[str, Any]:
    """The report of attempt records for pass@k. `arms` orders the arms (the first is
    the baseline of the differences; arms not named follow, sorted); default: sorted."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    records, repeats = _canonical(attempts)
    by_arm: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_arm[str(record.get("arm", ""))].append(record)
    order = [a for a in dict.fromkeys(arms or ()) if a in by_arm]
    order += sorted(a for a in by_arm if a not in order)
    per_arm = {arm: arm_report(by_arm[arm], k) for arm in order}
    differences = [
        {"arm": arm, "baseline": order[0], **compare(by_arm[order[0]], by_arm[arm])}
        for arm in order[1:]
    ]
    replayed = [arm for arm in order if per_arm[arm]["replayed"]]
    return {
        "k": k,
        "attempts": len(records),
        "repeats_dropped": repeats,
        "arms": order,
        "replayed": bool(replayed),
        "replayed_arms": replayed,
        "per_arm": per_arm,
        "differences": differences,
        "methods": METHODS,
    }


def read_attempts(path: Path) -> list[dict[str, Any]]:
    """The attempt records of an `attempts.jsonl`; a torn last line (an interrupted
    write) is skipped, any other bad line is a ValueError naming it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):
                break
            raise ValueError(f"{path}:{number}: not JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{number}: an attempt must be a JSON object")
        out.append(record)
    return out


# --- Markdown ----------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _pct_ci(value: float | None, ci: Sequence[float] | None) -> str:
    if value is None:
        return "–"
    if not ci:
        return _pct(value)
    return f"{value * 100:.0f}% [{ci[0] * 100:.0f}–{ci[1] * 100:.0f}%]"


def _pp_ci(value: float | None, ci: Sequence[float] | None) -> str:
    if value is None:
        return "–"
    text = f"{value * 100:+.0f} pp"
    return f"{text} [{ci[0] * 100:+.0f} to {ci[1] * 100:+.0f} pp]" if ci else text


def _num_ci(value: float | None, ci: Sequence[float] | None, unit: str = "") -> str:
    if value is None:
        return "–"
    text = f"{value:.0f}{unit}"
    return f"{text} [{ci[0]:.0f}–{ci[1]:.0f}]" if ci else text


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _pass_at_cell(arm: Mapping[str, Any], key: str) -> str:
    figure = arm[key]
    cell = _pct_ci(figure["value"], figure["ci"])
    if figure["value"] is not None and figure["tasks"] < arm["tasks"]:
        cell += f" ({figure['tasks']} of {arm['tasks']} tasks)"  # the others had < k samples
    return cell


def _rows(report: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    arms = [report["per_arm"][a] for a in report["arms"]]
    k = report["k"]
    rows: list[tuple[str, list[str]]] = [
        ("model", [", ".join(a["models"]) or "–" for a in arms]),
        ("strategy", [", ".join(a["strategies"]) or "–" for a in arms]),
        ("tasks", [str(a["tasks"]) for a in arms]),
        ("attempts", [str(a["attempts"]) for a in arms]),
    ]
    for key, _, label in RATES:
        rows.append(
            (label, [_pct_ci(a["rates"][key]["rate"], a["rates"][key]["ci"]) for a in arms])
        )
    rows.append(("pass@1", [_pass_at_cell(a, "pass_at_1") for a in arms]))
    if k > 1:  # with one sample pass@k is pass@1
        rows.append((f"pass@{k}", [_pass_at_cell(a, "pass_at_k") for a in arms]))
    rows += [
        (
            "repair gain",
            [_pp_ci(a["repair_gain"]["value"], a["repair_gain"]["ci"]) for a in arms],
        ),
        (
            "latency p50",
            [
                _num_ci(a["latency_ms"]["p50"]["value"], a["latency_ms"]["p50"]["ci"], " ms")
                for a in arms
            ],
        ),
        (
            "latency p95",
            [
                _num_ci(a["latency_ms"]["p95"]["value"], a["latency_ms"]["p95"]["ci"], " ms")
                for a in arms
            ],
        ),
        (
            "tokens per task",
            [_num_ci(a["tokens_per_task"]["value"], a["tokens_per_task"]["ci"]) for a in arms],
        ),
        ("errors", [str(a["errors"]) for a in arms]),
        ("replayed", ["yes" if a["replayed"] else "no" for a in arms]),
    ]
    return rows


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown: a table of metrics by arm, the differences, the methods."""
    arms = list(report["arms"])
    lines = ["# Evaluation report", ""]
    if not arms:
        return "\n".join([*lines, "No attempts.", ""])
    lines.append(
        f"{report['attempts']} attempts, k = {report['k']}; cells: value [95% confidence interval]."
    )
    if report["replayed"]:
        lines += [
            "",
            "> **Replayed:** answers of "
            + ", ".join(f"`{a}`" for a in report["replayed_arms"])
            + " were read from a recording, not asked of a model.",
        ]
    lines += ["", "| metric | " + " | ".join(_escape(a) for a in arms) + " |"]
    lines.append("|---|" + "---:|" * len(arms))
    for label, cells in _rows(report):
        lines.append(f"| {label} | " + " | ".join(_escape(c) for c in cells) + " |")
    if report["differences"]:
        lines += [
            "",
            "## Differences",
            "",
            "| arm vs baseline | metric | difference [95% CI] | p | significant at 5% |",
            "|---|---|---:|---:|---|",
        ]
        for d in report["differences"]:
            pair = _escape(f"{d['arm']} vs {d['baseline']}")
            for key, label in (("pass_rate", "pass rate"), ("pass_at_1", "pass@1")):
                m = d[key]
                lines.append(
                    f"| {pair} | {label} | {_pp_ci(m['diff'], m['ci'])} | {_p(m['p_value'])} "
                    f"| {'yes' if m['significant'] else 'no'} |"
                )
    lines += ["", "## Methods", ""]
    lines += [f"- {name.replace('_', ' ')}: {text}" for name, text in report["methods"].items()]
    return "\n".join(lines) + "\n"


# --- chart and files ---------------------------------------------------------------


def write_chart(report: Mapping[str, Any], path: Path) -> bool:
    """Grouped bars of the rates per arm with their intervals, as a PNG; False (and
    nothing written) when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    arms = list(report["arms"])
    labels = [label.removesuffix(" rate") for _, _, label in RATES]
    width = 0.8 / max(len(arms), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(labels) * max(len(arms), 1) * 0.6), 4.0))
    for i, arm in enumerate(arms):
        rates = report["per_arm"][arm]["rates"]
        values, low, high = [], [], []
        for key, _, _ in RATES:
            rate, ci = rates[key]["rate"], rates[key]["ci"]
            values.append(rate or 0.0)
            low.append(rate - ci[0] if rate is not None and ci else 0.0)
            high.append(ci[1] - rate if rate is not None and ci else 0.0)
        xs = [j + (i - (len(arms) - 1) / 2) * width for j in range(len(labels))]
        ax.bar(xs, values, width, yerr=[low, high], capsize=3, label=arm)
        for x, (key, _, _) in zip(xs, RATES, strict=True):
            if rates[key]["rate"] is None:  # e.g. no task with tests
                ax.text(x, 0.01, "n/a", ha="center", va="bottom", fontsize=8, rotation=90)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of attempts (95% CI)")
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    title = "Rates per arm" + (" (answers replayed)" if report.get("replayed") else "")
    ax.set_title(title)
    if arms:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), title="arm")
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return True


def write_report(report: Mapping[str, Any], out_dir: Path, err: TextIO | None = None) -> list[Path]:
    """Write `report.json`, `report.md` and `rates.png` (skipped, with a message, without
    matplotlib) to `out_dir`; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path, png_path = (
        out_dir / "report.json",
        out_dir / "report.md",
        out_dir / "rates.png",
    )
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path.write_text(markdown(report), encoding="utf-8")
    written = [json_path, md_path]
    if write_chart(report, png_path):
        written.append(png_path)
    else:
        print(
            "ocaml-ai-ls eval: matplotlib is not installed, so no rates.png "
            "(pip install 'ocaml-ai-ls[eval]')",
            file=err or sys.stderr,
        )
    return written
