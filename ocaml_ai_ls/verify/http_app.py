"""The HTTP face of `ces serve`: a Starlette app, served by uvicorn (see `service.serve`).

Why not `http.server`: its listening backlog of 5 reset connections under 80
clients, and its replies written in two parts met Nagle's algorithm (~44 ms per
keep-alive answer). uvicorn accepts with a backlog of 2048 on asyncio (whose
sockets set TCP_NODELAY); the app keeps a bounded queue in front of the warm
workers: a check beyond `capacity` waiting or running is answered 503 with
`Retry-After`, never left hanging or dropped.

Routes (the JSON bodies are byte for byte those of the former server):

- `POST /check` → 200 verification, 400 `{error}`, 503 busy, 500 checker failure.
- `GET /health` → `{status, workers, warm, queued}`.
- `GET /healthz` → 200 `{"status": "ok"}` once warm, else 503 `{"status": "warming"}`.
- `GET /metrics` → queue length, checks done per status, p50/p95 latency (JSON).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from .ces_options import CLIENT_TIMEOUT, MAX_BODY_BYTES
from .diffs import BadDiff, files_to_check
from .engine import CheckEngine

log = logging.getLogger(__name__)

#: Latencies kept for /metrics' percentiles (the most recent checks).
LATENCY_WINDOW = 1000


class _Json(Response):
    """`json.dumps` with its default separators, as the former server wrote it (clients
    that compare bytes, or cache by them, see no change)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content).encode("utf-8")


def _reply(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None, close: bool = False
) -> Response:
    extra = dict(headers or {})
    if close:  # the body was left unread: this connection cannot carry another request
        extra["Connection"] = "close"
    return _Json(body, status_code=status, headers=extra)


class _ClientError(Exception):
    def __init__(self, reason: str, close: bool = False) -> None:
        super().__init__(reason)
        self.close = close


@dataclass
class CheckQueue:
    """Admission and figures: at most `capacity` checks waiting or running at once.

    Touched only from the event loop, so it needs no lock.
    """

    capacity: int
    workers: int
    active: int = 0
    rejected: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    def enter(self) -> bool:
        if self.active >= self.capacity:
            self.rejected += 1
            return False
        self.active += 1
        return True

    def leave(self, status: str, ms: float) -> None:
        self.active -= 1
        self.statuses[status] += 1
        self.latencies_ms.append(ms)

    def percentile(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 1)

    def retry_after(self) -> int:
        """Seconds until the queue has room, from the median check time (at least 1)."""
        p50 = self.percentile(0.5) or 1000.0
        return max(1, math.ceil(self.active * p50 / 1000 / max(1, self.workers)))

    def metrics(self) -> dict[str, Any]:
        return {
            "queued": self.active,
            "capacity": self.capacity,
            "workers": self.workers,
            "checks": sum(self.statuses.values()),
            "statuses": dict(sorted(self.statuses.items())),
            "rejected": self.rejected,
            "latency_ms": {"p50": self.percentile(0.5), "p95": self.percentile(0.95)},
        }


def make_app(engine: CheckEngine, tests: bool, capacity: int) -> Starlette:
    """The service's ASGI app over a warm (or warming) engine."""
    queue = CheckQueue(capacity, engine.workers)
    # one thread per admitted check (it blocks until a shadow is free): never more
    threads = anyio.CapacityLimiter(capacity)

    async def health(request: Request) -> Response:
        return _reply(
            200,
            {
                "status": "ok",
                "workers": engine.workers,
                "warm": engine.warmed.is_set(),
                "queued": queue.active,
            },
        )

    async def healthz(request: Request) -> Response:
        if engine.warmed.is_set():
            return _reply(200, {"status": "ok"})
        return _reply(503, {"status": "warming"}, {"Retry-After": "1"})

    async def metrics(request: Request) -> Response:
        return _reply(200, {**queue.metrics(), "warm": engine.warmed.is_set()})

    async def check(request: Request) -> Response:
        try:
            diff, run_tests = await _read_request(request, tests)
        except _ClientError as exc:
            return _reply(400, {"error": str(exc)}, close=exc.close)
        except ClientDisconnect:
            return _reply(400, {"error": "the client went away"}, close=True)
        if not queue.enter():
            return _reply(
                503,
                {"error": f"busy: {queue.capacity} checks are queued; retry later"},
                {"Retry-After": str(queue.retry_after())},
            )
        started = time.perf_counter()
        status, body = 500, {"error": "the check was cancelled"}
        try:
            status, body = await anyio.to_thread.run_sync(
                _check, engine, diff, run_tests, limiter=threads
            )
            return _reply(status, body)
        finally:
            ms = (time.perf_counter() - started) * 1000
            queue.leave(str(body.get("status", f"http {status}")), ms)
            log.info("check: %s %s in %.0f ms", status, body.get("status", "error"), ms)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _reply(404, {"error": f"no such path {request.url.path!r}"}, close=True)

    async def not_allowed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        allowed = (exc.headers or {}).get("Allow", "")
        path = request.url.path
        return _reply(
            405,
            {"error": f"{path} takes {allowed}, not {request.method}"},
            {"Allow": allowed},
            close=True,  # a body we did not read may follow
        )

    return Starlette(
        routes=[
            Route("/check", check, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        exception_handlers={404: not_found, 405: not_allowed},
    )


def _check(engine: CheckEngine, diff: object, tests: bool) -> tuple[int, dict[str, Any]]:
    """In a worker thread: the diff's files, then the check once the shadows are warm."""
    try:
        files = files_to_check(diff, engine.root)
    except BadDiff as exc:
        return 400, {"error": str(exc)}
    try:
        engine.warmed.wait()
        result = engine.check(files, tests)
    except Exception as exc:  # a broken shadow answers, never takes the service down
        log.exception("check failed")
        return 500, {"error": f"the check failed: {type(exc).__name__}: {exc}"}
    return 200, result.to_json()


async def _read_request(request: Request, default_tests: bool) -> tuple[object, bool]:
    """The body's diff and tests flag, or _ClientError saying what is wrong."""
    headers = request.headers
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise _ClientError("chunked bodies are not supported: send a Content-Length", True)
    length_header = headers.get("content-length")
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
    try:
        async with asyncio.timeout(CLIENT_TIMEOUT):
            raw = await request.body()
    except TimeoutError:
        raise _ClientError(f"the body did not arrive within {CLIENT_TIMEOUT:g} s", True) from None
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
    run_tests = body.get("tests", default_tests)
    if not isinstance(run_tests, bool):
        raise _ClientError('"tests" must be true or false')
    return body["diff"], run_tests
