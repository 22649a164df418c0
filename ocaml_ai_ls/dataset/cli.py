"""`ocaml-ai-ls dataset export`: mined examples or eval tasks → TRL rows.

Exit status 0 when the files were written (maybe with rows left out, counted on
stderr), 2 for usage errors and inputs that cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ..cli_paths import absolute_path
    from ..config import STRATEGIES
    from . import FORMATS, MESSAGES

    parser = sub.add_parser(
        "dataset",
        help="turn mined episodes or eval tasks into training rows",
        description="Training data in TRL's conversational formats.",
    )
    kinds = parser.add_subparsers(dest="dataset_command", required=True)
    export = kinds.add_parser(
        "export",
        help="write train.jsonl and test.jsonl for TRL's trainers",
        description="One row per episode: the system and user messages the pipeline would "
        "send for its request (on the before state), and its change as the assistant's "
        "answer in the strategy's edit format. Rows whose answer does not parse and apply "
        "back to the after state byte for byte are left out and counted. A mined file's "
        "examples go to train.jsonl and its held-out file's to test.jsonl; eval tasks "
        "(with a gold_diff) go to test.jsonl.",
    )
    export.add_argument("input", type=absolute_path, metavar="MINED.jsonl|TASKS.jsonl")
    export.add_argument("--out", type=absolute_path, required=True, metavar="DIR")
    export.add_argument("--format", choices=FORMATS, default=MESSAGES)
    export.add_argument(
        "--heldout",
        type=absolute_path,
        metavar="FILE",
        help="the mined held-out examples (default: <input stem>.heldout.jsonl, if there)",
    )
    export.add_argument(
        "--project",
        type=absolute_path,
        help="the workspace the examples were mined from (default: nearest dune-project)",
    )
    export.add_argument(
        "--strategy", choices=STRATEGIES, help="edit format (default: model.strategy)"
    )
    export.add_argument(
        "--config",
        type=absolute_path,
        metavar="FILE",
        help="an .ocaml-ai.toml (default: the project's)",
    )
    export.add_argument(
        "--keep-empty", action="store_true", help="keep mined examples without an instruction"
    )


def _fail(message: str) -> int:
    print(f"ocaml-ai-ls dataset export: {message}", file=sys.stderr)
    return 2


def _settings(config: Path | None, project: Path) -> Any:
    from ..config import SettingsError, SettingsLayers, read_config_file, read_config_path

    layer = read_config_path(config) if config is not None else read_config_file(project)
    settings, errors = SettingsLayers(file=layer).build()
    if errors:
        raise SettingsError("; ".join(errors))
    return settings


def run(args: argparse.Namespace) -> int:
    from ..config import SettingsError
    from ..snapshots.mine_cli import default_heldout
    from ..workspace import command_root
    from .episodes import EVAL, TEST, TRAIN, InputError, eval_episodes, input_kind, mined_episodes
    from .export import ExportReport, export, write_rows

    if not args.input.is_file():
        return _fail(f"{args.input} is not a file")
    report = ExportReport()
    try:
        kind = input_kind(args.input)
        if kind == EVAL:
            episodes = eval_episodes(args.input, report.skipped)
            project = episodes[0].task.project if episodes else args.input.parent
        else:
            project = command_root(args.project)
            if not project.is_dir():
                return _fail(f"{project} is not a directory (the workspace mined)")
            episodes = mined_episodes(args.input, project, TRAIN, report.skipped, args.keep_empty)
            heldout = args.heldout if args.heldout is not None else default_heldout(args.input)
            if args.heldout is not None and not heldout.is_file():
                return _fail(f"{heldout} is not a file")
            if heldout.is_file() and heldout.resolve() != args.input.resolve():
                episodes += mined_episodes(heldout, project, TEST, report.skipped, args.keep_empty)
        settings = _settings(args.config, project)
    except (InputError, SettingsError) as exc:
        return _fail(str(exc))
    if args.strategy is not None:
        settings = replace(settings, model=replace(settings.model, strategy=args.strategy))
    try:
        write_rows(args.out, export(episodes, settings, report), args.format)
    except OSError as exc:
        return _fail(f"cannot write {args.out}: {exc}")
    print(f"dataset export: {report.summary()}", file=sys.stderr)
    print(
        f"dataset export: wrote {args.out / 'train.jsonl'} and {args.out / 'test.jsonl'}",
        file=sys.stderr,
    )
    return 0
