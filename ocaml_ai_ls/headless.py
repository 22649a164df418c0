"""`ocaml-ai-ls edit`: the editor's path, driven from a terminal.

Runs the real server in a thread of this process and speaks LSP to it over a
socket pair, exactly as an editor would over stdio; with `--apply` it plays the
editor's part of `workspace/applyEdit` and writes the files (only inside the
root). One process, not two: a one-shot edit is mostly start-up, and the
second interpreter with its own imports of pygls and lsprotocol cost more than
the edit itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.io_ import run_async
from pygls.lsp.client import LanguageClient

from . import __version__
from .config import Settings, SettingsError, SettingsLayers, read_config_file
from .edits.client_apply import ApplyRefused, plan_workspace_edit
from .journal import Reader, Recovery, WriteRefused, recover, write_all
from .paths import is_inside
from .positions import Encoding, decode, encode
from .uris import path_to_uri, uri_to_path
from .workspace import find_root

EXIT_OK, EXIT_NO_EDIT, EXIT_USAGE = 0, 1, 2
_LOCATION = re.compile(r"\A(?P<path>.+?)(?::(?P<line>\d+))?(?::(?P<col>\d+))?\Z")
REQUEST_ID = "ocaml-ai-edit"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EditOptions:
    location: str
    instruction: str
    root: Path | None = None
    candidates: int | None = None
    apply: bool = False
    json: bool = False
    verbose: bool = False


class UsageError(Exception):
    pass


def parse_location(location: str) -> tuple[Path, int | None, int | None]:
    """`PATH[:LINE[:COL]]` with 1-based LINE and COL, as compilers print them."""
    match = _LOCATION.match(location)
    if match is None:
        raise UsageError(f"cannot read the location {location!r}; expected PATH[:LINE[:COL]]")
    line = int(match["line"]) if match["line"] else None
    col = int(match["col"]) if match["col"] else None
    if line == 0 or col == 0:
        raise UsageError("LINE and COL count from 1")
    return Path(match["path"]).resolve(), line, col


def _position(text: str, line: int, col: int | None) -> types.Position:
    """A 1-based line and character column as a UTF-8 LSP position."""
    lines = text.splitlines() or [""]
    if line > len(lines):
        raise UsageError(f"line {line} is past the end of the file ({len(lines)} lines)")
    content = lines[line - 1]
    # no column: the first non-blank character
    chars = len(content) - len(content.lstrip()) if col is None else min(col - 1, len(content))
    return types.Position(line=line - 1, character=len(encode(content[:chars])))


def apply_to_disk(edit: types.WorkspaceEdit, root: Path) -> str | None:
    """Write a WorkspaceEdit (UTF-8 positions) to files under `root`; the failure or None.

    All or nothing, even when the process is killed half way (see `journal`): every
    change is checked and computed, under the root's lock, before a file is written.
    """

    def plan(read_bytes: Reader) -> dict[Path, bytes | None]:
        def read(uri: str) -> tuple[str, int | None] | None:
            path = uri_to_path(uri)
            if path is None or not is_inside(path, root):
                raise ApplyRefused(f"{uri} is outside {root}")
            data = read_bytes(path)
            return None if data is None else (decode(data), None)

        planned = plan_workspace_edit(edit, read, Encoding.UTF8)
        return {_path(uri): encode(text) for uri, text in planned.items()}

    try:
        earlier = write_all(root, plan)
    except (ApplyRefused, WriteRefused, OSError, UnicodeDecodeError) as exc:
        return str(exc)
    _tell(earlier)
    return None


def _path(uri: str) -> Path:
    path = uri_to_path(uri)
    assert path is not None  # the plan read it
    return path


def _tell(recovery: Recovery | None) -> None:
    """One line on stderr for an interrupted earlier `--apply` that was settled."""
    if recovery is not None:
        print(f"ocaml-ai-ls: {recovery.message}", file=sys.stderr)


def _check_settings(root: Path) -> Settings:
    """Refuse bad configuration up front (the server would fall back silently)."""
    try:
        layers = SettingsLayers(file=read_config_file(root))
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    settings, errors = layers.build()
    if errors:
        raise UsageError("; ".join(errors))
    return settings


async def _run(opts: EditOptions) -> int:
    path, line, col = parse_location(opts.location)
    root = opts.root.resolve() if opts.root else find_root(path)
    _tell(recover(root))  # an earlier `--apply` killed half way: settled before anything
    if not path.is_file():
        raise UsageError(f"{path} is not a file")
    if not is_inside(path, root):
        raise UsageError(f"{path} is not inside the root {root}")
    settings = _check_settings(root)
    text = decode(path.read_bytes())
    arg: dict[str, Any] = {
        "uri": path_to_uri(path),
        "instruction": opts.instruction,
        "apply": opts.apply,
    }
    if line is not None:
        pos = _position(text, line, col)
        arg["range"] = {"start": to_json_pos(pos), "end": to_json_pos(pos)}
    if opts.candidates is not None:
        arg["candidates"] = opts.candidates

    _quiet_logs(opts.verbose)
    client = PairClient("ocaml-ai-ls edit", __version__)
    apply_failure: list[str] = []

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def on_apply(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        failure = apply_to_disk(params.edit, root)
        if failure:
            apply_failure.append(failure)
        return types.ApplyWorkspaceEditResult(applied=failure is None, failure_reason=failure)

    @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def on_progress_create(params: types.WorkDoneProgressCreateParams) -> None:
        return None

    @client.feature(types.PROGRESS)
    def on_progress(params: types.ProgressParams) -> None:
        message = getattr(params.value, "message", None)
        if message and sys.stderr.isatty():
            print(f"\r\x1b[Kocaml-ai: {message}…", end="", file=sys.stderr, flush=True)

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def on_message(params: types.ShowMessageParams) -> None:
        if opts.verbose:
            print(f"ocaml-ai-ls: {params.message}", file=sys.stderr)

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def on_log(params: types.LogMessageParams) -> None:
        if opts.verbose:
            print(f"ocaml-ai-ls: {params.message}", file=sys.stderr)

    ours, theirs = socket.socketpair()
    server = serve_in_thread(theirs)
    # what the imports made lives as long as the process: out of the cycle collector's
    # walks (each full one would go over all of lsprotocol's classes again)
    gc.freeze()
    gc.enable()
    await client.start_pair(ours)
    loop = asyncio.get_running_loop()
    try:
        await client.initialize_async(
            types.InitializeParams(
                process_id=os.getpid(),
                root_uri=path_to_uri(root),
                workspace_folders=[types.WorkspaceFolder(uri=path_to_uri(root), name=root.name)],
                capabilities=_CAPABILITIES,
            )
        )
        client.initialized(types.InitializedParams())
        request = client.protocol.send_request_async(
            types.WORKSPACE_EXECUTE_COMMAND,
            types.ExecuteCommandParams(command="ocaml-ai.generate", arguments=[arg]),
            msg_id=REQUEST_ID,
        )

        def interrupt() -> None:
            client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=REQUEST_ID))
            request.cancel()

        loop.add_signal_handler(signal.SIGINT, interrupt)
        try:
            # the server enforces the model deadline; this only guards against a stuck server
            result = await asyncio.wait_for(request, settings.model.deadline + 60)
        except TimeoutError:
            print("ocaml-ai-ls: the server did not answer in time", file=sys.stderr)
            return EXIT_NO_EDIT
        except asyncio.CancelledError:
            print("\ninterrupted", file=sys.stderr)
            return 130
        finally:
            loop.remove_signal_handler(signal.SIGINT)
        if sys.stderr.isatty():
            print("\r\x1b[K", end="", file=sys.stderr)
        return _report(result, opts, apply_failure)
    finally:
        await _stop(client, server)
        ours.close()


def to_json_pos(pos: types.Position) -> dict[str, int]:
    return {"line": pos.line, "character": pos.character}


def _report(result: Any, opts: EditOptions, apply_failure: list[str]) -> int:
    if not isinstance(result, dict):
        print(f"ocaml-ai-ls: unexpected answer from the server: {result!r:.200}", file=sys.stderr)
        return EXIT_NO_EDIT
    if opts.json:
        print(json.dumps(result, indent=2))
    candidates = result.get("candidates") or []
    if not candidates:
        print(f"ocaml-ai-ls: {result.get('error') or _rejections(result)}", file=sys.stderr)
        return EXIT_NO_EDIT
    best = candidates[0]
    verification = best.get("verification", {})
    if not opts.json:
        _print_source(best.get("diff", ""))
        print(f"verification: {verification.get('status')}", file=sys.stderr)
        for err in verification.get("errors", [])[:5]:
            before = " (the project had it before)" if err.get("preexisting") else ""
            print(
                f"  {err['path']}:{err['line']}:{err['column']}: {err['message']}{before}",
                file=sys.stderr,
            )
    if opts.apply and not result.get("applied"):
        reason = "; ".join(apply_failure) or result.get("error") or "not applied"
        print(f"ocaml-ai-ls: the edit was not applied: {reason}", file=sys.stderr)
        return EXIT_NO_EDIT
    return EXIT_OK


def _print_source(text: str) -> None:
    """Source text as its bytes (a byte that is not UTF-8 as itself, like `git diff`),
    whatever the terminal's error handler."""
    sys.stdout.flush()
    sys.stdout.buffer.write(encode(text))
    sys.stdout.buffer.flush()


def _rejections(result: dict[str, Any]) -> str:
    reasons = [r.get("reason", "") for r in result.get("rejected") or []]
    return "no usable edit: " + "; ".join(reasons) if reasons else "no usable edit"


class PairClient(LanguageClient):
    """A client of a server in this process: `start_tcp` over a socket it is given."""

    async def start_pair(self, sock: socket.socket) -> None:
        reader, writer = await asyncio.open_connection(sock=sock)
        self.protocol.set_writer(writer)
        connection = asyncio.create_task(
            run_async(
                stop_event=self._stop_event,
                reader=reader,
                protocol=self.protocol,
                logger=log,
                error_handler=self.report_server_error,
            )
        )
        self._async_tasks.append(connection)


def serve_in_thread(sock: socket.socket) -> threading.Thread:
    """The real server, on its own event loop in a daemon thread, over `sock`
    (what it does on stdio for an editor)."""
    from .server import create_server

    server = create_server()
    reader, writer = sock.makefile("rb"), sock.makefile("wb")

    def serve() -> None:
        try:
            server.start_io(reader, writer)
        finally:
            for stream in (reader, writer):
                with contextlib.suppress(OSError):
                    stream.close()
            sock.close()

    thread = threading.Thread(target=serve, name="ocaml-ai-ls server", daemon=True)
    thread.start()
    return thread


def _quiet_logs(verbose: bool) -> None:
    """The server's log on stderr with `--verbose`, else nowhere (as the subprocess
    server's was)."""
    root = logging.getLogger()
    if verbose:
        logging.basicConfig(
            level=logging.DEBUG, format="ocaml-ai-ls: %(levelname)s %(name)s: %(message)s"
        )
    elif not root.handlers:
        root.addHandler(logging.NullHandler())


async def _stop(client: LanguageClient, server: threading.Thread) -> None:
    try:
        await asyncio.wait_for(client.shutdown_async(None), 5)
        client.exit(None)
    except Exception:
        pass
    await asyncio.to_thread(server.join, 5)
    await client.stop()  # type: ignore[no-untyped-call]
    if server.is_alive():
        log.warning("the server did not stop within 5 s")


_CAPABILITIES = types.ClientCapabilities(
    general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf8]),
    window=types.WindowClientCapabilities(work_done_progress=True),
    workspace=types.WorkspaceClientCapabilities(
        apply_edit=True,
        workspace_edit=types.WorkspaceEditClientCapabilities(
            document_changes=True,
            resource_operations=[types.ResourceOperationKind.Create],
        ),
    ),
)


def run_edit(opts: EditOptions) -> int:
    """Run one headless edit; the exit status of `ocaml-ai-ls edit`."""
    try:
        return asyncio.run(_run(opts))
    except UsageError as exc:
        print(f"ocaml-ai-ls edit: {exc}", file=sys.stderr)
        return EXIT_USAGE
