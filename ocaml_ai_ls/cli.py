"""Command line: `ocaml-ai-ls` serves LSP on stdio; `ocaml-ai-ls edit` edits headless."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__

COMMANDS = ("serve", "edit", "context")


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host or "127.0.0.1", int(port)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocaml-ai-ls",
        description="AI edits of OCaml code over LSP. With no command, serve LSP on stdio.",
    )
    parser.add_argument("--version", action="version", version=f"ocaml-ai-ls {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="serve LSP (stdio by default)")
    serve.add_argument("--tcp", type=_host_port, metavar="HOST:PORT", help="serve on TCP")
    serve.add_argument("--log-file", type=Path, help="write the log here instead of stderr")
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
    edit.add_argument("--root", type=Path, help="project root (default: nearest dune-project)")
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
    context.add_argument("--root", type=Path, help="project root (default: nearest dune-project)")
    context.add_argument(
        "--instruction", default="", help="also look up the names this instruction mentions"
    )
    context.add_argument("--json", action="store_true", help="print the pieces as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if not args_in or args_in[0] not in (*COMMANDS, "-h", "--help", "--version"):
        args_in.insert(0, "serve")  # options without a command are serve's
    parser = _parser()
    args = parser.parse_args(args_in)
    if args.command == "edit":
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
    if args.command == "context":
        from .context.show import run_context
        from .headless import UsageError, parse_location

        try:
            path, line, _col = parse_location(args.location)
        except UsageError as e:
            parser.error(str(e))
        return run_context(path, line, args.root, args.instruction, args.json)
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
