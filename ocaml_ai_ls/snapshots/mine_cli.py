"""`ocaml-ai-ls snapshot mine`: the store's timeline → training and held-out JSONL files.

Limits default to the root's `[snapshots]` settings, the model to its `[model]`
(and `[fallback]`), the key from the environment. Exit status 0 when the files
were written (maybe empty), 1 when there are no snapshots of the root or the
store or the files cannot be read or written, 2 for usage and settings errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli_paths import absolute_path
from ..config import SettingsError, SettingsLayers, read_config_file
from ..providers import provider_for
from ..workspace import command_root
from .miner import MineOptions, mine, write_jsonl
from .store import SnapshotStore, StoreError


def default_heldout(out: Path) -> Path:
    """`data.jsonl` → `data.heldout.jsonl`, beside it."""
    return out.with_name(f"{out.stem}.heldout.jsonl")


def add_mine_parser(snapshot_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mine_parser = snapshot_sub.add_parser(
        "mine",
        help="extract edit and repair examples from the recorded timeline",
        description="Walk the root's snapshots and write edit episodes (green → red … → "
        "green, net change) and repair steps (red → green, with the errors) as JSON lines, "
        "split by episode into --out and a held-out file. The instructions are written by "
        "the configured model unless --no-model.",
    )
    mine_parser.set_defaults(mine_parser=mine_parser)
    mine_parser.add_argument(
        "--root", type=absolute_path, help="project root (default: nearest dune-project)"
    )
    mine_parser.add_argument(
        "--out", type=absolute_path, required=True, metavar="FILE", help="the training examples"
    )
    mine_parser.add_argument(
        "--heldout",
        type=absolute_path,
        metavar="FILE",
        help="the held-out examples (default: <out stem>.heldout.jsonl beside --out)",
    )
    mine_parser.add_argument("--no-model", action="store_true", help="leave the instructions empty")
    mine_parser.add_argument(
        "--max-lines",
        type=int,
        metavar="N",
        help="changed lines an example may have (default: snapshots.max_changed_lines)",
    )
    mine_parser.add_argument(
        "--max-files",
        type=int,
        metavar="N",
        help="files an example may change (default: snapshots.max_files)",
    )


def _fail(message: str, status: int) -> int:
    print(f"ocaml-ai-ls snapshot mine: {message}", file=sys.stderr)
    return status


def run_mine(args: argparse.Namespace) -> int:
    root = command_root(args.root)
    if not root.is_dir():
        return _fail(f"{root} is not a directory", 2)
    try:
        settings, errors = SettingsLayers(file=read_config_file(root)).build()
    except SettingsError as e:
        return _fail(str(e), 2)
    if errors:
        return _fail("; ".join(errors), 2)
    sn = settings.snapshots
    max_lines = args.max_lines if args.max_lines is not None else sn.max_changed_lines
    max_files = args.max_files if args.max_files is not None else sn.max_files
    if max_lines < 1 or max_files < 1:
        return _fail("--max-lines and --max-files must be at least 1", 2)
    out: Path = args.out
    heldout: Path = args.heldout if args.heldout is not None else default_heldout(out)
    if heldout.resolve() == out.resolve():
        return _fail("--heldout must be another file than --out", 2)
    options = MineOptions(max_lines, max_files, sn.heldout_share, settings.context)
    store = SnapshotStore(root)
    try:
        result = mine(store, options, None if args.no_model else lambda: provider_for(settings))
    except (OSError, StoreError) as e:
        return _fail(f"cannot read the snapshots of {root}: {e}", 1)
    if result.report.snapshots == 0:
        return _fail(
            f"no snapshots of {root} (record some with `ocaml-ai-ls snapshot take` or `watch`)",
            1,
        )
    try:
        write_jsonl(out, result.training)
        write_jsonl(heldout, result.heldout)
    except OSError as e:
        return _fail(f"cannot write the examples: {e}", 1)
    print(f"mine: {result.report.summary()}", file=sys.stderr)
    print(f"mine: wrote {out} and {heldout}", file=sys.stderr)
    return 0
