"""A scripted OpenAI-compatible model server on 127.0.0.1, for tests and benchmarks.

A real HTTP server (threads, stdlib) that answers `POST /v1/chat/completions`
from a FIFO of scripted replies: streamed (SSE) or not, HTTP errors (with headers
such as Retry-After), hangs, streams cut mid-way, and `GET /v1/models`. It records
requests, paths, headers and client disconnects. `tests/wire_servers.py` speaks
other wire formats by overriding `_answer`, `_error_json` and `_models_json`.
`python -m tests.model_server --answer-file F` serves answers from a file.
"""

from __future__ import annotations

import argparse
import json
import select
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

NEXT = "=====NEXT====="


@dataclass
class Reply:
    answers: list[str] | str = ""
    stream: bool | None = None
    status: int = 200
    body: str | None = None
    hang: float = 0.0
    chunk_size: int = 16
    chunk_delay: float = 0.0
    cut_after: int | None = None
    model: str = "scripted-model"
    ignore_n: bool = False
    #: Extra response headers (e.g. {"Retry-After": "1"}) on a non-streamed reply.
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def texts(self) -> list[str]:
        return [self.answers] if isinstance(self.answers, str) else list(self.answers)


class _Gone(Exception):
    """The client hung up."""


class ScriptedModel:
    #: Path of the API under the server's root, as it appears in `base_url`.
    path_prefix = "/v1"

    def __init__(self) -> None:
        self._queue: deque[Reply] = deque()
        self._default: Reply | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._disconnected = threading.Event()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.times: list[float] = []
        #: What `GET .../models` lists.
        self.models: list[str] = ["scripted-model"]
        self.disconnects: list[float] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # -- lifecycle -------------------------------------------------------------

    def start(self, port: int = 0) -> Self:
        model = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                model._handle(self)

            def do_GET(self) -> None:
                model._handle_get(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}{self.path_prefix}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- script ----------------------------------------------------------------

    def enqueue(self, *replies: Reply | str) -> None:
        with self._lock:
            self._queue.extend(Reply(answers=r) if isinstance(r, str) else r for r in replies)

    def set_default(self, reply: Reply | str | None) -> None:
        self._default = Reply(answers=reply) if isinstance(reply, str) else reply

    def wait_for_disconnect(self, timeout: float) -> bool:
        return self._disconnected.wait(timeout)

    def _next(self) -> Reply | None:
        with self._lock:
            return self._queue.popleft() if self._queue else self._default

    # -- serving ---------------------------------------------------------------

    def _gone(self) -> None:
        self.disconnects.append(time.monotonic())
        self._disconnected.set()

    def _wait(self, handler: BaseHTTPRequestHandler, seconds: float) -> None:
        """Sleep, but notice a client that hangs up (EOF on the socket) or a stop."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stopping.is_set():
            readable, _, _ = select.select([handler.connection], [], [], 0.02)
            if readable and not handler.connection.recv(1, 2):  # MSG_PEEK: EOF?
                raise _Gone

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        self._record(handler, body)
        reply = self._next()
        try:
            if reply is None:
                self._send(handler, 500, json.dumps(self._error_json(500, "no scripted reply")))
                return
            if reply.hang:
                self._wait(handler, reply.hang)
            if reply.status != 200 or reply.body is not None:
                text = (
                    reply.body
                    if reply.body is not None
                    else json.dumps(
                        self._error_json(reply.status, f"scripted status {reply.status}")
                    )
                )
                self._send(handler, reply.status, text, reply.headers)
                return
            self._answer(handler, reply, body if isinstance(body, dict) else {})
        except (_Gone, BrokenPipeError, ConnectionResetError):
            self._gone()

    def _record(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        with self._lock:
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in handler.headers.items()})
            self.paths.append(handler.path)
            self.times.append(time.monotonic())

    def _handle_get(self, handler: BaseHTTPRequestHandler) -> None:
        """The model list; a reply queued before it scripts an error instead."""
        self._record(handler, {"_get": handler.path})
        with self._lock:
            reply = self._queue.popleft() if self._queue else None
        if reply is not None and (reply.status != 200 or reply.body is not None):
            text = reply.body or json.dumps(self._error_json(reply.status, "scripted"))
            self._send(handler, reply.status, text, reply.headers)
        else:
            self._send(handler, 200, json.dumps(self._models_json()))

    # -- the wire format (overridden in tests/wire_servers.py) -----------------

    def _error_json(self, status: int, message: str) -> dict[str, Any]:
        return {"error": {"message": message}}

    def _models_json(self) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]}

    def _answer(self, handler: BaseHTTPRequestHandler, reply: Reply, body: dict[str, Any]) -> None:
        n = body.get("n", 1)
        texts = reply.texts[: 1 if reply.ignore_n else max(1, int(n))]
        stream = reply.stream if reply.stream is not None else bool(body.get("stream"))
        if stream:
            self._stream(handler, reply, texts)
        else:
            self._send(handler, 200, json.dumps(self._completion(reply, texts)), reply.headers)

    @staticmethod
    def _completion(reply: Reply, texts: list[str]) -> dict[str, Any]:
        return {
            "id": "chatcmpl-scripted",
            "object": "chat.completion",
            "model": reply.model,
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": t},
                    "finish_reason": "stop",
                }
                for i, t in enumerate(texts)
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": sum(len(t) for t in texts)},
        }

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        text: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = text.encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()

    def _stream(self, handler: BaseHTTPRequestHandler, reply: Reply, texts: list[str]) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        size = max(1, reply.chunk_size)
        pieces = [[t[i : i + size] for i in range(0, len(t), size)] or [""] for t in texts]
        events: list[dict[str, Any]] = []
        for step in range(max(len(p) for p in pieces)):
            for index, parts in enumerate(pieces):
                if step < len(parts):
                    delta: dict[str, Any] = {"content": parts[step]}
                    if step == 0:
                        delta["role"] = "assistant"
                    last = step == len(parts) - 1
                    events.append(
                        {
                            "id": "chatcmpl-scripted",
                            "object": "chat.completion.chunk",
                            "model": reply.model,
                            "choices": [
                                {
                                    "index": index,
                                    "delta": delta,
                                    "finish_reason": "stop" if last else None,
                                }
                            ],
                        }
                    )
        for count, event in enumerate(events):
            if reply.cut_after is not None and count >= reply.cut_after:
                handler.wfile.flush()
                return  # close without [DONE]
            handler.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            handler.wfile.flush()
            if reply.chunk_delay:
                self._wait(handler, reply.chunk_delay)
        handler.wfile.write(b"data: [DONE]\n\n")
        handler.wfile.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description="serve scripted answers, OpenAI-style")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--answer-file", required=True)
    args = parser.parse_args()
    with open(args.answer_file, encoding="utf-8") as fh:
        answers = [a.strip("\n") + "\n" for a in fh.read().split(NEXT + "\n")]
    server = ScriptedModel()
    server.enqueue(*answers[:-1])
    server.set_default(answers[-1])
    server.start(args.port)
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
