"""`ocaml-ai-ls ces`: the Code Evaluation Service, over HTTP or from the command line.

`ces serve` answers on 127.0.0.1 only (the checks run the project's code:
its tests, its ppx):

- `POST /check` `{"diff": TEXT | [{"path", "text"|"diff"}], "tests": BOOL?}` →
  200 and the verification `{status, stages, errors}`; a malformed body or a
  diff that does not apply → 400 `{"error": reason}`; 503 with `Retry-After`
  when `--queue` checks are already waiting or running; 500 when the checker
  itself failed.
- `GET /health` → `{"status": "ok", "workers": N, "warm": BOOL, "queued": N}`;
  `GET /healthz` (200 once warm, else 503); `GET /metrics` (JSON figures).

It runs on uvicorn + Starlette (`http_app.py`), imported only by `serve`.

`ces check DIFF_FILE...` checks files the same way and prints one JSON line per
file. Both share `CheckEngine`: requests queue on its warm shadows.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from ..source_text import decode, read_source
from .ces_options import (
    HOST,
    CesOptions,
    CesUsageError,
    validate,
)
from .diffs import BadDiff, files_to_check
from .engine import CheckEngine
from .pool import PoolBusy
from .result import OK, Verification

log = logging.getLogger(__name__)

#: Connections the kernel holds for uvicorn to accept (http.server's was 5).
BACKLOG = 2048
#: Seconds an idle keep-alive connection stays open (uvicorn's default 5 makes a
#: client that pauses race the close).
KEEP_ALIVE = 30


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


def serve(
    options: CesOptions, port: int, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Warm the workers, serve until SIGINT/SIGTERM, and let the checks under way answer.

    The port is bound before the warm-up (a port in use fails at once; `/health`
    answers `warm: false` meanwhile and checks wait for it); the line
    `ces: serving URL` goes to stdout once the workers are warm. uvicorn serves
    in a thread of its own, so the signals stay ours (the first stops gracefully,
    a second one stops waiting for the checks under way).
    """
    import uvicorn  # not at import: `serve` (LSP) and `ces check` do without it

    from .http_app import make_app

    options = validate(options)
    stop, hurry = threading.Event(), threading.Event()
    _on_signals(stop, hurry)
    engine = _open_engine(options, options.workers)
    try:
        # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so, and a
        # reply uvicorn writes in two parts (head, body) would meet Nagle's algorithm
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((HOST, port))
            sock.listen(BACKLOG)
        except OSError as exc:
            sock.close()
            raise CesUsageError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None
        url = f"http://{HOST}:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            make_app(engine, options.tests, options.queue),
            http="h11",
            lifespan="off",
            backlog=BACKLOG,
            log_config=None,
            access_log=False,
            timeout_keep_alive=KEEP_ALIVE,
            timeout_graceful_shutdown=int(options.timeout * 2 + 5),
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="ces-http", daemon=True
        )
        thread.start()
        print(f"ces: listening on {url}", file=err, flush=True)
        if _warm(engine, err, stop):
            print(f"ces: serving {url}", file=out, flush=True)
        while not stop.wait(0.5):
            if not thread.is_alive():
                raise CesUsageError("the HTTP server stopped")
        print("ces: stopping (letting the checks under way answer)", file=err, flush=True)
        server.should_exit = True
        while thread.is_alive():
            if hurry.is_set():
                server.force_exit = True
            thread.join(0.2)
        if server.force_exit:
            print("ces: stopped with checks still running", file=err, flush=True)
        sock.close()
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
    all_ok = True
    with _answers(options, runnable, err) as answers:
        for name, job in jobs:
            line: dict[str, Any] = {"file": name}
            if isinstance(job, str):
                line["error"] = job
                all_ok = False
            else:
                result = next(answers)
                line.update(result)
                all_ok = all_ok and result.get("verification", {}).get("status") == OK
            print(json.dumps(line), file=out, flush=True)
    return 0 if all_ok else 1


@contextlib.contextmanager
def _answers(
    options: CesOptions, runnable: list[dict[str, str | None]], err: TextIO
) -> Iterator[Iterator[dict[str, Any]]]:
    """The answers to `runnable`, in order, as they come: from local warm shadows, or
    from Ray actors (`options.ray`); `{"verification": ...}` or `{"error": ...}` each."""
    if not runnable:
        yield iter(())
        return
    workers = min(options.workers, len(runnable))
    if options.ray is not None:
        from .ray_workers import RayUnavailable, RayWorkers

        try:
            ray_workers = RayWorkers(options.ray, workers)
        except RayUnavailable as exc:
            raise CesUsageError(str(exc)) from None
        try:
            key = ray_workers.add_project(options.root, options.timeout, options.profile)
            print(f"ces: checking on Ray with {workers} actor(s)", file=err, flush=True)
            yield ray_workers.check_all(key, [(files, options.tests) for files in runnable])
        finally:
            ray_workers.close()
        return
    engine = _open_engine(options, workers)
    try:
        _warm(engine, err)
        with ThreadPoolExecutor(workers) as threads:
            futures = [threads.submit(_check_one, engine, f, options.tests) for f in runnable]
            yield (future.result() for future in futures)
    finally:
        engine.close()


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
