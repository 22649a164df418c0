"""`ocaml-ai-ls eval TASKS.jsonl`: run held-out tasks through the editor's pipeline, per
arm, and report how each arm did.

Exit status: 0 when the run finished, 130 when Ctrl-C stopped it (what was done is
saved and reported), 2 for bad input (tasks file, settings, arms).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..cli_paths import absolute_path
from .runner import EvalError, EvalOptions, Runner, load_settings, select_arms
from .tasks import TaskError, load_tasks

EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register `eval` on the main parser's subcommands."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "eval",
        help="run held-out tasks through the pipeline and report per arm",
        description=(
            "Run each task of TASKS.jsonl through the same pipeline as ocaml-ai.generate "
            "(context, prompt, model, parse, apply, compiler check, repair rounds) for each "
            "arm and sample; attempts are appended to OUT/attempts.jsonl (a rerun resumes), "
            "and the report is written to OUT/report.{json,md} and OUT/rates.png."
        ),
    )
    configure(parser)
    return parser


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tasks", type=absolute_path, metavar="TASKS.jsonl")
    parser.add_argument(
        "--arms", help="comma-separated arm names from routing.arms (default: every arm)"
    )
    parser.add_argument(
        "--samples", type=int, default=1, metavar="K", help="independent attempts per task and arm"
    )
    parser.add_argument(
        "--workers", type=int, default=2, metavar="N", help="attempts run (and checked) at once"
    )
    parser.add_argument(
        "--out", type=absolute_path, help="results directory (default: eval-<tasks file name>)"
    )
    parser.add_argument(
        "--config",
        type=absolute_path,
        metavar="FILE",
        help="settings (.ocaml-ai.toml format); default: the one beside the tasks file, "
        "else the first task's project's",
    )
    parser.add_argument(
        "--replay",
        type=absolute_path,
        metavar="ANSWERS.jsonl",
        help="answer from recorded answers instead of a model",
    )
    parser.add_argument(
        "--record-answers",
        action="store_true",
        help="record every model answer to OUT/answers.jsonl (for --replay)",
    )
    parser.add_argument(
        "--max-attempts", type=int, metavar="N", help="start at most N new attempts, then report"
    )
    parser.add_argument(
        "--retry-errors",
        action="store_true",
        help="rerun recorded attempts that ended with an error (a model that was down)",
    )
    parser.add_argument(
        "--ray",
        metavar="auto|ADDRESS",
        help="check the candidates on Ray actors, --workers of them (auto: the running "
        "cluster, else a local Ray; needs ocaml-ai-ls[ray])",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds the attempts in flight get after Ctrl-C before they are cancelled",
    )


def run(args: argparse.Namespace) -> int:
    """Run `eval` with parsed arguments; print the report's Markdown to stdout."""
    if args.samples < 1 or args.workers < 1:
        print("ocaml-ai-ls eval: --samples and --workers must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        tasks = load_tasks(args.tasks)
        if not tasks:
            raise TaskError(f"{args.tasks}: no tasks")
        settings = load_settings(args.config, args.tasks, tasks)
        names = [n.strip() for n in args.arms.split(",") if n.strip()] if args.arms else None
        arms = select_arms(settings, names)
        if args.replay is not None and not args.replay.is_file():
            raise EvalError(f"{args.replay}: no such answers file")
    except (TaskError, EvalError) as exc:
        print(f"ocaml-ai-ls eval: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out: Path = args.out or absolute_path(f"eval-{args.tasks.stem}")
    opts = EvalOptions(
        tasks=tasks,
        out=out,
        settings=settings,
        arms=arms,
        samples=args.samples,
        workers=args.workers,
        replay=args.replay,
        record_answers=args.record_answers,
        max_attempts=args.max_attempts,
        retry_errors=args.retry_errors,
        grace=args.grace,
        ray=args.ray,
    )
    where = "replayed answers" if args.replay else settings.model.base_url
    print(
        f"eval: {len(tasks)} task(s) x {len(arms)} arm(s) ({', '.join(a.name for a in arms)}) "
        f"x {args.samples} sample(s); model: {where}; results in {out}",
        file=sys.stderr,
    )
    try:
        summary = asyncio.run(Runner(opts).run())
    except EvalError as exc:  # Ray that cannot be reached
        print(f"ocaml-ai-ls eval: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from .report import build_report, write_report  # matplotlib only when reporting

    report = build_report(summary.attempts, args.samples, [a.name for a in arms])
    paths = write_report(report, out)
    markdown = next((p for p in paths if p.suffix == ".md"), None)
    if markdown is not None:
        sys.stdout.write(markdown.read_text(encoding="utf-8"))
    sys.stdout.flush()
    errors = [a for a in summary.attempts if a.get("error")]
    if errors:
        print(
            f"eval: {len(errors)} attempt(s) ended with an error, e.g. {errors[0]['error']} "
            "(--retry-errors reruns them)",
            file=sys.stderr,
        )
    print(
        f"eval: {summary.finished} attempt(s) run in {summary.seconds:.1f} s; "
        f"report: {', '.join(str(p) for p in paths)}",
        file=sys.stderr,
    )
    return EXIT_INTERRUPTED if summary.interrupted else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m ocaml_ai_ls.eval.cli` (the same as `ocaml-ai-ls eval`)."""
    parser = argparse.ArgumentParser(prog="ocaml-ai-ls eval")
    configure(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
