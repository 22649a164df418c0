"""Command line: `ocaml-ai-ls` serves LSP on stdio; `ocaml-ai-ls edit` edits headless;
`ocaml-ai-ls ces` checks diffs of a dune project in warm shadows (HTTP or one-shot);
`ocaml-ai-ls stats` prints the metrics of past generations; `ocaml-ai-ls doctor`
says what is wrong with the setup and how to fix it; `ocaml-ai-ls snapshot` records
the workspace's history with its build state and mines it into training data;
`ocaml-ai-ls recover` settles an `edit --apply` that was killed half way."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from . import __version__
from .cli_paths import absolute_path

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130
COMMANDS = (
    "serve",
    "edit",
    "context",
    "ces",
    "stats",
    "doctor",
    "snapshot",
    "eval",
    "eval-import",
    "dataset",
    "recover",
)


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host or "127.0.0.1", int(port)


def _parser(snapshot: bool = True) -> argparse.ArgumentParser:
    """The command line; `snapshot` off leaves out the `snapshot` and `eval` commands,
    whose parsers import the recorder and the runner (half a second that `serve`, which
    editors start, should not pay)."""
    parser = argparse.ArgumentParser(
        prog="ocaml-ai-ls",
        description="AI edits of OCaml code over LSP. With no command, serve LSP on stdio.",
    )
    parser.add_argument("--version", action="version", version=f"ocaml-ai-ls {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser("serve", help="serve LSP (stdio by default)")
    serve.add_argument("--tcp", type=_host_port, metavar="HOST:PORT", help="serve on TCP")
    serve.add_argument(
        "--log-file", type=absolute_path, help="write the log here instead of stderr"
    )
    serve.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    edit = sub.add_parser(
        "edit",
        help="edit files from the terminal through the server",
        description="Ask for an edit at PATH[:LINE[:COL]] and print the best candidate's diff.",
    )
    edit.add_argument("location", metavar="PATH[:LINE[:COL]]")
    edit.add_argument("instruction")
    edit.add_argument(
        "--root", type=absolute_path, help="project root (default: nearest dune-project)"
    )
    edit.add_argument("--candidates", type=int, metavar="N", help="answers to ask for (1-10)")
    edit.add_argument("--apply", action="store_true", help="write the best edit to the files")
    edit.add_argument("--json", action="store_true", help="print the command's result object")
    edit.add_argument("--verbose", "-v", action="store_true", help="show the server's messages")
    context = sub.add_parser(
        "context",
        help="print the context a request at PATH:LINE would get",
        description="Index the root and print the ranked pieces the model would see.",
    )
    context.add_argument("location", metavar="PATH[:LINE]")
    context.add_argument(
        "--root", type=absolute_path, help="project root (default: nearest dune-project)"
    )
    context.add_argument(
        "--instruction", default="", help="also look up the names this instruction mentions"
    )
    context.add_argument("--json", action="store_true", help="print the pieces as JSON")
    context.add_argument(
        "--explain",
        action="store_true",
        help="why each piece was chosen (its score and reason), and what did not fit",
    )
    recover = sub.add_parser(
        "recover",
        help="finish or roll back an `edit --apply` that was interrupted",
        description="Settle an `edit --apply` on the root that was killed half way: "
        "finish it when all its new texts were saved, else roll it back; a file changed "
        "since is never overwritten (then every file is left as it is, and the message "
        "says where both texts are kept). Prints one line when there was something to "
        "do, nothing otherwise. Exit status 1 when the files were left as they are. "
        "`edit` and the server's start do the same first.",
    )
    recover.add_argument(
        "--root",
        type=absolute_path,
        help="project root (default: the project around the current directory)",
    )
    _ces_parser(sub)
    if snapshot:
        from .eval.cli import add_parser as add_eval_parser
        from .snapshots.cli import add_parser as add_snapshot_parser

        add_snapshot_parser(sub)
        add_eval_parser(sub)
    from .eval.import_cli import add_parser as add_import_parser

    add_import_parser(sub)
    from .dataset.cli import add_parser as add_dataset_parser

    add_dataset_parser(sub)
    doctor = sub.add_parser(
        "doctor",
        help="check the settings, the models, the OCaml tools and the metrics database",
        description="Check the settings the server would use for a root, reach every "
        "configured model (listing its models), find dune and the compiler, open the "
        "metrics database; print what is wrong and how to fix it. Exit status 1 when "
        "something failed.",
    )
    doctor.add_argument(
        "--root", type=absolute_path, help="project root (default: nearest dune-project)"
    )
    doctor.add_argument("--json", action="store_true", help="print the findings as JSON")
    stats = sub.add_parser(
        "stats",
        help="print how generations went, per model, arm or strategy",
        description="Per group: requests, apply rate, verified-ok rate, editor-applied rate, "
        "acceptance rate with a 95%% confidence interval, latency p50/p95, from the local "
        "metrics database (read only). Exit status 1 when the database cannot be read.",
    )
    stats.add_argument(
        "--since",
        metavar="PERIOD",
        help="only generations in the last 7d, 24h, 30m, 2w, or since a date",
    )
    stats.add_argument("--by", default="model", choices=["model", "arm", "strategy"])
    stats.add_argument("--json", action="store_true", help="print a JSON list of rows")
    stats.add_argument(
        "--db",
        type=absolute_path,
        help="the metrics database (default: telemetry.db, else $OCAML_AI_METRICS_DB, "
        "else the user data directory)",
    )
    return parser


def _ces_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .verify.ces_options import (
        DEFAULT_PORT,
        DEFAULT_TIMEOUT,
        DEFAULT_WORKERS,
        MAX_QUEUED,
        MAX_WORKERS,
    )

    ces = sub.add_parser(
        "ces",
        help="the Code Evaluation Service: check diffs of a dune project in warm shadows",
        description="Type-check (and test) diffs of a dune project in warm shadow copies; "
        "the project's files are only read.",
    )
    ces_sub = ces.add_subparsers(dest="ces_command", required=True, metavar="{serve,check}")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--root", type=absolute_path, required=True, help="the dune project (dune-project)"
        )
        p.add_argument(
            "--workers",
            type=int,
            default=DEFAULT_WORKERS,
            metavar="N",
            help=f"warm shadows checking at once (1-{MAX_WORKERS}, default {DEFAULT_WORKERS})",
        )
        p.add_argument(
            "--timeout",
            type=float,
            default=DEFAULT_TIMEOUT,
            metavar="SECONDS",
            help=f"per dune run (default {DEFAULT_TIMEOUT:g})",
        )
        p.add_argument("--tests", action="store_true", help="also run `dune test` by default")
        p.add_argument(
            "--profile",
            default="dev",
            help="the dune profile to build with (dev: warnings are errors; release)",
        )

    serve = ces_sub.add_parser(
        "serve",
        help="serve POST /check on 127.0.0.1",
        description="Serve HTTP on 127.0.0.1 (uvicorn): POST /check with {diff, tests?} "
        "returns {status, stages, errors}; a malformed body or a diff that does not apply "
        "gets a 400 {error}; a check beyond --queue waiting or running gets a 503 with "
        "Retry-After. GET /health, /healthz (200 once warm), /metrics (queue, checks, "
        "p50/p95 latency). Prints 'ces: serving URL' on stdout when warm.",
    )
    common(serve)
    serve.set_defaults(ces_parser=serve)
    serve.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        metavar="P",
        help=f"TCP port (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    serve.add_argument(
        "--queue",
        type=int,
        default=MAX_QUEUED,
        metavar="N",
        help=f"checks waiting or running before a 503 (default {MAX_QUEUED})",
    )
    serve.add_argument("--verbose", "-v", action="store_true", help="log each request to stderr")
    check = ces_sub.add_parser(
        "check",
        help="check diff files, one JSON line each",
        description="Check each DIFF_FILE (a unified diff, SEARCH/REPLACE blocks or whole "
        "files; - reads stdin) and print {file, verification} or {file, error} per line. "
        "Exit status 0 when all are ok, 1 otherwise, 2 for usage errors.",
    )
    common(check)
    check.set_defaults(ces_parser=check)
    check.add_argument(
        "--ray",
        metavar="auto|ADDRESS",
        help="check on Ray actors, --workers of them (auto: the running cluster, else a "
        "local Ray; needs ocaml-ai-ls[ray])",
    )
    check.add_argument("diff_files", nargs="+", metavar="DIFF_FILE")


def _run_ces(args: argparse.Namespace) -> int:
    from .verify.ces_options import CesOptions, CesUsageError
    from .verify.service import check_files, serve

    parser: argparse.ArgumentParser = args.ces_parser  # errors name the subcommand
    options = CesOptions(args.root, args.workers, args.timeout, args.tests, args.profile)
    if args.ces_command == "serve":
        options = replace(options, queue=args.queue)
    else:
        options = replace(options, ray=args.ray)
    try:
        if args.ces_command == "serve":
            if not 0 <= args.port < 65536:
                parser.error("--port must be between 0 and 65535")
            if args.verbose:
                logging.basicConfig(level="INFO", format="%(asctime)s %(message)s")
            return serve(options, args.port)
        return check_files(options, args.diff_files)
    except CesUsageError as e:
        parser.error(str(e))


def _run_recover(given: Path | None) -> int:
    """Settle the root's interrupted write; cheap (no LSP types) when given `--root`."""
    from .journal import LOCK_WAIT, recover

    if given is not None:
        root = given.resolve()
    else:
        from .workspace import command_root

        root = command_root(None)
    if not root.is_dir():
        print(f"ocaml-ai-ls recover: {root} is not a directory", file=sys.stderr)
        return 2
    done = recover(root, wait=LOCK_WAIT)
    if done is None:
        return 0
    print(f"ocaml-ai-ls: {done.message}", file=sys.stderr)
    return 0 if done.settled else 1


def _telemetry_db() -> str:
    """`telemetry.db` of the `.ocaml-ai.toml` of the project around the current directory."""
    from .config import SettingsError, SettingsLayers, read_config_file
    from .workspace import command_root

    try:
        layers = SettingsLayers(file=read_config_file(command_root(None)))
    except SettingsError:
        return ""
    settings, _ = layers.build()
    return settings.telemetry.db


#: Errors that bad input (a file missing or unreadable, bytes that are not text, a
#: malformed number or JSON) ends in where no command caught it: a message and exit 2.
INPUT_ERRORS = (OSError, UnicodeError, ValueError)
#: Set, the errors above end in their traceback (to find where one came from).
TRACEBACK_ENV = "OCAML_AI_TRACEBACK"


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if not args_in or args_in[0] not in (*COMMANDS, "-h", "--help", "--version"):
        args_in.insert(0, "serve")  # options without a command are serve's
    parser = _parser(snapshot=args_in[0] in ("snapshot", "eval", "-h", "--help"))
    args = parser.parse_args(args_in)
    try:
        return _run(parser, args)
    except INPUT_ERRORS as exc:
        if os.environ.get(TRACEBACK_ENV):
            raise
        print(f"ocaml-ai-ls {args.command}: {_describe(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _describe(exc: BaseException) -> str:
    """The error in words: an OSError's `strerror: file`, else its message (its type
    when it has none)."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return str(exc) or type(exc).__name__


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """The parsed command, run."""
    if args.command == "edit":
        # the imports make objects that live as long as the process: no cycle collection
        # while they load (`run_edit` freezes them and collects as usual after)
        gc.disable()
        from .headless import EditOptions, run_edit

        if args.candidates is not None and not 1 <= args.candidates <= 10:
            parser.error("--candidates must be between 1 and 10")
        return run_edit(
            EditOptions(
                location=args.location,
                instruction=args.instruction,
                root=args.root,
                candidates=args.candidates,
                apply=args.apply,
                json=args.json,
                verbose=args.verbose,
            )
        )
    if args.command == "ces":
        return _run_ces(args)
    if args.command == "recover":
        return _run_recover(args.root)
    if args.command == "eval-import":
        from .eval.import_cli import run as run_import

        return run_import(args)
    if args.command == "dataset":
        from .dataset.cli import run as run_dataset

        return run_dataset(args)
    if args.command == "eval":
        from .eval.cli import run as run_eval

        return run_eval(args)
    if args.command == "snapshot":
        from .snapshots.cli import run as run_snapshot

        return run_snapshot(args)
    if args.command == "doctor":
        from .doctor import run_doctor

        return run_doctor(args.root, args.json)
    if args.command == "stats":
        from .metrics.stats import parse_since, run_stats
        from .metrics.store import default_db_path

        try:
            since = parse_since(args.since) if args.since is not None else None
        except ValueError as e:
            parser.error(f"--since: {e}")
        return run_stats(args.db or default_db_path(_telemetry_db()), since, args.by, args.json)
    if args.command == "context":
        from .context.show import run_context
        from .headless import UsageError, parse_location

        try:
            path, line, _col = parse_location(args.location)
        except UsageError as e:
            parser.error(str(e))
        return run_context(path, line, args.root, args.instruction, args.json, args.explain)
    logging.basicConfig(
        level=args.log_level.upper(),
        filename=args.log_file,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from .server import create_server

    server = create_server()
    if args.tcp:
        server.start_tcp(*args.tcp)
    else:
        server.start_io()
    return 0


if __name__ == "__main__":
    sys.exit(main())
