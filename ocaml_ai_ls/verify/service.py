"""`ocaml-ai-ls ces`: the Code Evaluation Service, over HTTP or from the command line.

`ces serve` answers on 127.0.0.1 only (the checks run the project's code:
its tests, its ppx):

- `POST /check` `{"diff": TEXT | [{"path", "text"|"diff"}], "tests": BOOL?}` →
  200 and the verification `{status, stages, errors}`; a malformed body or a
  diff that does not apply → 400 `{"error": reason}`; 503 when too many
  checks are queued; 500 when the checker itself failed.
- `GET /health` → `{"status": "ok", "workers": N, "warm": BOOL, "queued": N}`.

`ces check DIFF_FILE...` checks files the same way and prints one JSON line per
file. Both share `CheckEngine`: requests queue on its warm shadows.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, TextIO
from urllib.parse import urlsplit

from ..source_text import decode, read_source
from .ces_options import (
    CLIENT_TIMEOUT,
    HOST,
    MAX_BODY_BYTES,
    MAX_QUEUED,
    CesOptions,
    CesUsageError,
    validate,
)
from .diffs import BadDiff, files_to_check
from .engine import CheckEngine
from .pool import PoolBusy
from .result import OK, Verification

log = logging.getLogger(__name__)


def _open_engine(options: CesOptions, workers: int) -> CheckEngine:
    try:
        return CheckEngine(options.root, workers, options.timeout, profile=options.profile)
    except PoolBusy as exc:
        raise CesUsageError(str(exc)) from None


def _warm(engine: CheckEngine, err: TextIO, stop: threading.Event | None = None) -> bool:
    """Warm the engine's shadows, progress on `err`; False when stopped first."""
    started = time.perf_counter()

    def report(done: int, total: int) -> None:
        took = time.perf_counter() - started
        print(f"ces: warmed worker {done}/{total} ({took:.1f} s)", file=err, flush=True)

    print(f"ces: warming {engine.workers} worker(s) on {engine.root}", file=err, flush=True)
    return engine.warm(report, stop)


# -- HTTP ----------------------------------------------------------------------------


class _ClientError(Exception):
    def __init__(self, reason: str, close: bool = False) -> None:
        super().__init__(reason)
        #: Whether the body was left unread (the connection cannot be reused).
        self.close = close


class CesServer(ThreadingHTTPServer):
    """One thread per connection; the checks queue on the engine's shadows."""

    daemon_threads = True

    def __init__(self, port: int, engine: CheckEngine, tests: bool) -> None:
        self.engine = engine
        self.tests = tests
        self._active = 0
        self._idle = threading.Condition()
        super().__init__((HOST, port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away is not worth a traceback; anything else is logged."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            log.debug("client %s went away", client_address)
        else:
            log.exception("error serving %s", client_address)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}"

    @property
    def queued(self) -> int:
        return self._active

    def enter(self) -> bool:
        """Count a check in; False when the queue is full."""
        with self._idle:
            if self._active >= MAX_QUEUED:
                return False
            self._active += 1
            return True

    def leave(self) -> None:
        with self._idle:
            self._active -= 1
            self._idle.notify_all()

    def drain(self, timeout: float, hurry: threading.Event) -> bool:
        """Wait for the checks under way to answer (True), or give up at `timeout`."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._active and not hurry.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.2))
            return not self._active


class _Handler(BaseHTTPRequestHandler):
    server: CesServer
    protocol_version = "HTTP/1.1"
    timeout = CLIENT_TIMEOUT
    server_version = "ocaml-ai-ls-ces"

    def do_GET(self) -> None:
        if self._route("GET") == "/health":
            s = self.server
            body = {
                "status": "ok",
                "workers": s.engine.workers,
                "warm": s.engine.warmed.is_set(),
                "queued": s.queued,
            }
            self._reply(HTTPStatus.OK, body)

    def do_POST(self) -> None:
        if self._route("POST") != "/check":
            return
        try:
            diff, tests = self._read_request()
        except _ClientError as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)}, close=exc.close)
            return
        if not self.server.enter():
            self._reply(
                HTTPStatus.SERVICE_UNAVAILABLE,
                {"error": f"busy: {MAX_QUEUED} checks are queued; retry later"},
                headers={"Retry-After": "1"},
            )
            return
        started = time.perf_counter()
        try:
            status, body = self._check(diff, tests)
            self._reply(status, body)
        finally:
            self.server.leave()  # after the answer is sent: a stopping service waits for it
        log.info(
            "check: %s %s in %.0f ms",
            status.value,
            body.get("status", "error"),
            (time.perf_counter() - started) * 1000,
        )

    def _check(self, diff: object, tests: bool) -> tuple[HTTPStatus, dict[str, Any]]:
        try:
            files = files_to_check(diff, self.server.engine.root)
        except BadDiff as exc:
            return HTTPStatus.BAD_REQUEST, {"error": str(exc)}
        try:
            self.server.engine.warmed.wait()
            result = self.server.engine.check(files, tests)
        except Exception as exc:  # a broken shadow answers, never takes the service down
            log.exception("check failed")
            return HTTPStatus.INTERNAL_SERVER_ERROR, {
                "error": f"the check failed: {type(exc).__name__}: {exc}"
            }
        return HTTPStatus.OK, result.to_json()

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_OPTIONS(self) -> None:
        self._route("OPTIONS")

    def _route(self, method: str) -> str | None:
        """The path when `method` is what it takes; else the 404 or 405 is sent."""
        path = urlsplit(self.path).path
        allowed = {"/check": "POST", "/health": "GET"}.get(path)
        if allowed is None:
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such path {path!r}"}, close=True)
            return None
        if method != allowed:
            self._reply(
                HTTPStatus.METHOD_NOT_ALLOWED,
                {"error": f"{path} takes {allowed}, not {method}"},
                headers={"Allow": allowed},
                close=True,  # a body we did not read may follow
            )
            return None
        return path

    def _read_request(self) -> tuple[object, bool]:
        """The body's diff and tests flag, or _ClientError saying what is wrong."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise _ClientError("chunked bodies are not supported: send a Content-Length", True)
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise _ClientError("a Content-Length is required", True)
        try:
            length = int(length_header)
        except ValueError:
            raise _ClientError(f"bad Content-Length {length_header!r}", True) from None
        if length < 0:
            raise _ClientError(f"bad Content-Length {length_header!r}", True)
        if length > MAX_BODY_BYTES:
            raise _ClientError(
                f"the body is {length} bytes; at most {MAX_BODY_BYTES} are accepted", True
            )
        raw = self.rfile.read(length)
        if len(raw) < length:
            raise _ClientError("the body ended before its Content-Length", True)
        try:
            body = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise _ClientError("the body is not UTF-8") from None
        except (ValueError, RecursionError) as exc:
            raise _ClientError(f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise _ClientError('the body must be a JSON object {"diff": ..., "tests": bool}')
        if "diff" not in body:
            raise _ClientError('the body has no "diff" (a unified diff, or [{path, text}])')
        tests = body.get("tests", self.server.tests)
        if not isinstance(tests, bool):
            raise _ClientError('"tests" must be true or false')
        return body["diff"], tests

    def _reply(
        self,
        status: HTTPStatus,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
        close: bool = False,
    ) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def serve(
    options: CesOptions, port: int, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Warm the workers, serve until SIGINT/SIGTERM, and let the checks under way answer.

    The port is bound before the warm-up (a port in use fails at once; `/health`
    answers `warm: false` meanwhile and checks wait for it); the line
    `ces: serving URL` goes to stdout once the workers are warm.
    """
    options = validate(options)
    stop, hurry = threading.Event(), threading.Event()
    _on_signals(stop, hurry)
    engine = _open_engine(options, options.workers)
    try:
        try:
            server = CesServer(port, engine, options.tests)
        except OSError as exc:
            raise CesUsageError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None
        try:
            thread = threading.Thread(target=server.serve_forever, name="ces-http", daemon=True)
            thread.start()
            print(f"ces: listening on {server.url}", file=err, flush=True)
            if _warm(engine, err, stop):
                print(f"ces: serving {server.url}", file=out, flush=True)
            while not stop.wait(0.5):
                pass
            print("ces: stopping (letting the checks under way answer)", file=err, flush=True)
            server.shutdown()
            if not server.drain(options.timeout * 2 + 5, hurry):
                print("ces: stopped with checks still running", file=err, flush=True)
        finally:
            server.server_close()
    finally:
        engine.close()
    return 0


def _on_signals(stop: threading.Event, hurry: threading.Event) -> None:
    """The first SIGINT/SIGTERM stops gracefully; a second one stops waiting."""

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            hurry.set()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handle)


# -- the command line ----------------------------------------------------------------


def check_files(
    options: CesOptions,
    diff_files: Sequence[str],
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    read_stdin: Callable[[], str] = lambda: decode(sys.stdin.buffer.read()),
) -> int:
    """`ces check`: one JSON line per diff file, in order; 0 when every one is ok.

    A diff that does not apply is an `error` line (as the service's 400); the
    shadows are warmed only when some diff applies, and only as many as needed.
    """
    options = validate(options)
    stdin: list[str] = []  # read once, however often `-` is named

    def once() -> str:
        if not stdin:
            stdin.append(read_stdin())
        return stdin[0]

    texts = [_read_diff(name, once) for name in diff_files]
    jobs: list[tuple[str, dict[str, str | None] | str]] = []
    for name, text in zip(diff_files, texts, strict=True):
        try:
            jobs.append((name, files_to_check(text, options.root)))
        except BadDiff as exc:
            jobs.append((name, str(exc)))
    runnable = [files for _, files in jobs if isinstance(files, dict)]
    engine = _open_engine(options, min(options.workers, len(runnable))) if runnable else None
    all_ok = True
    try:
        if engine is not None:
            _warm(engine, err)
        with ThreadPoolExecutor(max(1, min(len(runnable), options.workers))) as threads:
            futures = [
                threads.submit(_check_one, engine, files, options.tests)
                if isinstance(files, dict) and engine is not None
                else None
                for _, files in jobs
            ]
            for (name, job), future in zip(jobs, futures, strict=True):
                line: dict[str, Any] = {"file": name}
                if future is None:
                    line["error"] = job
                    all_ok = False
                else:
                    result = future.result()
                    line.update(result)
                    all_ok = all_ok and result.get("verification", {}).get("status") == OK
                print(json.dumps(line), file=out, flush=True)
    finally:
        if engine is not None:
            engine.close()
    return 0 if all_ok else 1


def _check_one(engine: CheckEngine, files: dict[str, str | None], tests: bool) -> dict[str, Any]:
    try:
        result: Verification = engine.check(files, tests)
    except Exception as exc:  # as the service's 500
        log.exception("check failed")
        return {"error": f"the check failed: {type(exc).__name__}: {exc}"}
    return {"verification": result.to_json()}


def _read_diff(name: str, read_stdin: Callable[[], str]) -> str:
    if name == "-":
        return read_stdin()
    try:  # bytes, as `git diff` and `ocaml-ai-ls edit` print a file's that are not UTF-8
        return read_source(Path(name))
    except OSError as exc:
        raise CesUsageError(f"cannot read {name}: {exc.strerror or exc}") from None
