"""`ocaml-ai-ls snapshot take|watch|log|gc` (and `mine`, from `mine_cli.py`).

`take` records one snapshot now, `watch` one per interval while something
changed (until SIGINT or SIGTERM), `log` prints the timeline, `gc` applies the
retention settings. `--root` defaults to the nearest dune-project; settings come
from the root's `.ocaml-ai.toml`. Exit status 0 on success, 1 when the store
cannot be used (busy, git failing), 2 for usage and settings errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from datetime import datetime
from pathlib import Path

from ..cli_paths import absolute_path
from ..config import Settings, SettingsError, SettingsLayers, read_config_file
from ..workspace import command_root
from .recorder import Recorder
from .store import MEGABYTE, Snapshot, SnapshotStore, StoreError, first_error

#: Characters of the first error shown per line of `snapshot log`.
ERROR_WIDTH = 100


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `snapshot` command and its subcommands, on the main parser's subparsers."""
    snapshot = sub.add_parser(
        "snapshot",
        help="record the workspace's history with its build state, inspect and mine it",
        description="Snapshots of the source files (.ml .mli dune dune-project *.opam; "
        "ignored and secret-looking files never) with the build state of exactly those "
        "files (type-checked in a warm shadow build), in a bare git repository per "
        "workspace under the user data directory.",
    )
    snapshot_sub = snapshot.add_subparsers(dest="snapshot_command", required=True)

    def root(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--root", type=absolute_path, help="project root (default: nearest dune-project)"
        )

    take = snapshot_sub.add_parser(
        "take",
        help="record one snapshot now",
        description="Record a snapshot of the source files and their build state; print "
        "it, or 'nothing changed' when the files are the last snapshot's.",
    )
    root(take)
    watch = snapshot_sub.add_parser(
        "watch",
        help="record a snapshot every interval while files change",
        description="Every interval, if a source file changed, record a snapshot and "
        "print it; until interrupted (SIGINT, SIGTERM).",
    )
    root(watch)
    watch.add_argument(
        "--interval",
        type=float,
        metavar="SECONDS",
        help="seconds between two looks (default: snapshots.interval)",
    )
    log = snapshot_sub.add_parser(
        "log",
        help="print the timeline: time, files changed, green/red, first error",
        description="Every snapshot, oldest first: time, id, build state, files changed "
        "(how many, up to 3 names), first error.",
    )
    root(log)
    log.add_argument("--json", action="store_true", help="print a JSON list of snapshots")
    gc = snapshot_sub.add_parser(
        "gc",
        help="drop old snapshots (by age, then by size)",
        description="Drop the snapshots older than --max-age-days, then the oldest while "
        "the store is larger than --max-megabytes (the newest always stays), and prune.",
    )
    root(gc)
    gc.add_argument(
        "--max-age-days", type=float, metavar="N", help="default: snapshots.max_age_days"
    )
    gc.add_argument(
        "--max-megabytes", type=float, metavar="N", help="default: snapshots.max_megabytes"
    )
    try:
        from .mine_cli import add_mine_parser
    except ImportError:  # the miner is not there (yet)
        return
    add_mine_parser(snapshot_sub)


def run(args: argparse.Namespace) -> int:
    """Run the `snapshot` subcommand `args` was parsed for."""
    if args.snapshot_command == "mine":
        from .mine_cli import run_mine

        return run_mine(args)
    root = command_root(args.root)
    if not root.is_dir():
        return _fail(f"{root} is not a directory", 2)
    try:
        settings, errors = SettingsLayers(file=read_config_file(root)).build()
    except SettingsError as e:
        return _fail(str(e), 2)
    for error in errors:
        print(f"ocaml-ai-ls snapshot: ignoring {error}", file=sys.stderr)
    try:
        if args.snapshot_command == "take":
            return asyncio.run(_take(root, settings))
        if args.snapshot_command == "watch":
            interval = args.interval if args.interval is not None else settings.snapshots.interval
            if interval <= 0:
                return _fail("--interval must be positive", 2)
            return asyncio.run(_watch(root, settings, interval))
        if args.snapshot_command == "log":
            return _log(SnapshotStore(root), args.json)
        if args.snapshot_command == "gc":
            return _gc(root, settings, args.max_age_days, args.max_megabytes)
    except StoreError as e:
        return _fail(str(e), 1)
    return _fail(f"unknown command {args.snapshot_command!r}", 2)


def line(snap: Snapshot) -> str:
    """One snapshot on one line: time, short id, state, files changed, first error."""
    when = datetime.fromtimestamp(snap.time).strftime("%Y-%m-%d %H:%M:%S")
    names = ", ".join(snap.changed[:3]) + (", ..." if len(snap.changed) > 3 else "")
    count = len(snap.changed)
    files = f"{count} file{'s' if count != 1 else ''}" + (f" ({names})" if names else "")
    out = f"{when}  {snap.id[:8]}  {snap.state.status:<7}  {files}"
    if snap.state.errors:
        error = " ".join(first_error(snap.state).split())
        if len(error) > ERROR_WIDTH:
            error = error[: ERROR_WIDTH - 1] + "…"
        out += f"  {error}"
    return out


async def _take(root: Path, settings: Settings) -> int:
    recorder = Recorder(root, settings.snapshots, timeout=settings.verify.timeout)
    try:
        snap = await recorder.take()
    finally:
        recorder.close()
    print(line(snap) if snap is not None else "nothing changed")
    return 0


async def _watch(root: Path, settings: Settings, interval: float) -> int:
    def show(snap: Snapshot) -> None:
        print(line(snap), flush=True)

    recorder = Recorder(root, settings.snapshots, timeout=settings.verify.timeout, on_snapshot=show)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"snapshot: watching {root} every {interval:g} s (store {recorder.store.path})",
        file=sys.stderr,
        flush=True,
    )
    try:
        await recorder.run(stop, interval)
    finally:
        recorder.close()
    return 0


def _log(store: SnapshotStore, as_json: bool) -> int:
    snaps = store.log()
    if as_json:
        print(json.dumps([s.to_json() for s in snaps], indent=1))
        return 0
    if not snaps:
        print(f"no snapshots of {store.root}", file=sys.stderr)
    for snap in snaps:
        print(line(snap))
    return 0


def _gc(
    root: Path, settings: Settings, max_age_days: float | None, max_megabytes: float | None
) -> int:
    age = max_age_days if max_age_days is not None else settings.snapshots.max_age_days
    size = max_megabytes if max_megabytes is not None else settings.snapshots.max_megabytes
    if age < 0 or size < 0:
        return _fail("--max-age-days and --max-megabytes must not be negative", 2)
    report = SnapshotStore(root).gc(age, size)
    print(
        f"gc: dropped {len(report.dropped)} snapshots, kept {report.kept}; "
        f"{_size(report.bytes_before)} -> {_size(report.bytes_after)}"
    )
    return 0


def _size(n: int) -> str:
    if n >= MEGABYTE:
        return f"{n / MEGABYTE:.1f} MB"
    return f"{n / 1024:.0f} kB"


def _fail(message: str, status: int) -> int:
    print(f"ocaml-ai-ls snapshot: {message}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    """`python -m ocaml_ai_ls.snapshots.cli ARGS` is `ocaml-ai-ls snapshot ARGS`."""
    parser = argparse.ArgumentParser(prog="ocaml-ai-ls")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["snapshot", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(main())
