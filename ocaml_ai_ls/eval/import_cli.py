"""`ocaml-ai-ls eval-import mined|multiple`: tasks for `ocaml-ai-ls eval` from mined
held-out episodes (issue #7) or from MultiPL-E's OCaml problems."""

from __future__ import annotations

import argparse
import sys

from ..cli_paths import absolute_path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "eval-import",
        help="make tasks for `eval` from mined episodes or MultiPL-E problems",
        description="Write a tasks file for `ocaml-ai-ls eval`.",
    )
    kinds = parser.add_subparsers(dest="import_kind", required=True)
    mined = kinds.add_parser(
        "mined",
        help="from a held-out file of `snapshot mine`",
        description="Each mined example becomes a task over the workspace it came from: "
        "its files before the change as overrides, its instruction, located at the first "
        "changed line, the mined diff as the gold diff.",
    )
    mined.add_argument("heldout", type=absolute_path, metavar="HELDOUT.jsonl")
    mined.add_argument("--project", type=absolute_path, required=True, help="the workspace mined")
    mined.add_argument("--out", type=absolute_path, required=True, metavar="TASKS.jsonl")
    mined.add_argument(
        "--keep-empty", action="store_true", help="keep examples without an instruction"
    )
    multiple = kinds.add_parser(
        "multiple",
        help="from MultiPL-E OCaml problems (JSON or JSONL)",
        description="Each problem becomes a dune project (its prompt with a stub body, "
        "its assertions as a dune test) and a task checked by its tests.",
    )
    multiple.add_argument("problems", type=absolute_path, metavar="PROBLEMS.json[l]")
    multiple.add_argument("--out-dir", type=absolute_path, required=True, metavar="DIR")


def run(args: argparse.Namespace) -> int:
    from .importers import import_mined, import_multiple
    from .tasks import TaskError

    try:
        if args.import_kind == "mined":
            count = import_mined(args.heldout, args.project, args.out, args.keep_empty)
            print(f"{count} tasks written to {args.out}")
        else:
            tasks = import_multiple(args.problems, args.out_dir)
            print(f"tasks written to {tasks}")
    except (TaskError, OSError) as exc:
        print(f"ocaml-ai-ls eval-import: {exc}", file=sys.stderr)
        return 2
    return 0
