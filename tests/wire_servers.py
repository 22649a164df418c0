"""Scripted model servers on 127.0.0.1 for Ollama's and Anthropic's wire formats.

The same machinery as `tests/model_server.py` (a FIFO of scripted replies, HTTP
errors with headers, hangs, cut streams, recorded requests, paths, headers and
disconnects); only the bodies differ. Ollama: `POST /api/chat` streamed as NDJSON,
`GET /api/tags`. Anthropic: `POST /v1/messages` streamed as server-sent events,
`GET /v1/models`. `base_url` is the server root, as each API expects.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.model_server import Reply, ScriptedModel


@dataclass
class WireReply(Reply):
    #: Send the format's error (an NDJSON object, an SSE `error` event) after this many
    #: text chunks, instead of the rest of the answer.
    error_after: int | None = None
    error_message: str = "scripted failure"
    #: Anthropic's error type for `error_after` (`overloaded_error` is worth a retry).
    error_type: str = "overloaded_error"
    prompt_tokens: int = 7


def _pieces(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class _Streaming(ScriptedModel):
    """Shared by the two formats: a streamed body, chunk by chunk, cut or failed on cue."""

    path_prefix = ""

    def _open_stream(self, handler: BaseHTTPRequestHandler, content_type: str) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True

    def _write(self, handler: BaseHTTPRequestHandler, data: str, reply: Reply) -> None:
        handler.wfile.write(data.encode())
        handler.wfile.flush()
        if reply.chunk_delay:
            self._wait(handler, reply.chunk_delay)

    def _chunks(
        self,
        handler: BaseHTTPRequestHandler,
        reply: Reply,
        text: str,
        chunk: Callable[[str], str],
        error: str,
    ) -> bool:
        """Write the text's chunks; False if the stream was cut or failed on cue."""
        error_after = reply.error_after if isinstance(reply, WireReply) else None
        for count, piece in enumerate(_pieces(text, reply.chunk_size)):
            if reply.cut_after is not None and count >= reply.cut_after:
                return False
            if error_after is not None and count >= error_after:
                self._write(handler, error, reply)
                return False
            self._write(handler, chunk(piece), reply)
        if error_after is not None:
            self._write(handler, error, reply)
            return False
        return True


class OllamaModel(_Streaming):
    """Ollama's native API: `POST /api/chat` (NDJSON when streamed), `GET /api/tags`."""

    def _error_json(self, status: int, message: str) -> dict[str, Any]:
        return {"error": message}

    def _models_json(self) -> dict[str, Any]:
        return {
            "models": [
                {"name": m, "model": m, "size": 1, "details": {"format": "gguf"}}
                for m in self.models
            ]
        }

    @staticmethod
    def _final(reply: Reply, text: str, content: str) -> dict[str, Any]:
        prompt = reply.prompt_tokens if isinstance(reply, WireReply) else 7
        return {
            "model": reply.model,
            "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": content},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": prompt,
            "eval_count": len(text),
        }

    def _answer(self, handler: BaseHTTPRequestHandler, reply: Reply, body: dict[str, Any]) -> None:
        text = reply.texts[0] if reply.texts else ""
        stream = reply.stream if reply.stream is not None else body.get("stream", True) is True
        if not stream:
            self._send(handler, 200, json.dumps(self._final(reply, text, text)), reply.headers)
            return
        self._open_stream(handler, "application/x-ndjson")

        def chunk(piece: str) -> str:
            message = {"role": "assistant", "content": piece}
            return json.dumps({"model": reply.model, "message": message, "done": False}) + "\n"

        message = reply.error_message if isinstance(reply, WireReply) else "failure"
        error = json.dumps({"error": message}) + "\n"
        if self._chunks(handler, reply, text, chunk, error):
            self._write(handler, json.dumps(self._final(reply, text, "")) + "\n", reply)


ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class AnthropicModel(_Streaming):
    """Anthropic's Messages API: `POST /v1/messages` (SSE when streamed), `GET /v1/models`."""

    def _error_json(self, status: int, message: str) -> dict[str, Any]:
        kind = ANTHROPIC_ERRORS.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def _models_json(self) -> dict[str, Any]:
        data = [{"type": "model", "id": m, "display_name": m} for m in self.models]
        return {"data": data, "has_more": False}

    @staticmethod
    def _event(name: str, data: dict[str, Any]) -> str:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n"

    def _answer(self, handler: BaseHTTPRequestHandler, reply: Reply, body: dict[str, Any]) -> None:
        text = reply.texts[0] if reply.texts else ""
        prompt = reply.prompt_tokens if isinstance(reply, WireReply) else 7
        stream = reply.stream if reply.stream is not None else body.get("stream") is True
        if not stream:
            whole: dict[str, Any] = {
                "id": "msg_scripted",
                "type": "message",
                "role": "assistant",
                "model": reply.model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": prompt, "output_tokens": len(text)},
            }
            self._send(handler, 200, json.dumps(whole), reply.headers)
            return
        self._open_stream(handler, "text/event-stream")
        start: dict[str, Any] = {
            "id": "msg_scripted",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": reply.model,
            "stop_reason": None,
            "usage": {"input_tokens": prompt, "output_tokens": 1},
        }
        self._write(
            handler,
            self._event("message_start", {"type": "message_start", "message": start}),
            reply,
        )
        block = {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": ""},
        }
        self._write(handler, self._event("content_block_start", block), reply)
        self._write(handler, self._event("ping", {"type": "ping"}), reply)

        def chunk(piece: str) -> str:
            delta = {"type": "text_delta", "text": piece}
            return self._event(
                "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            )

        kind = reply.error_type if isinstance(reply, WireReply) else "api_error"
        message = reply.error_message if isinstance(reply, WireReply) else "failure"
        error = self._event("error", {"type": "error", "error": {"type": kind, "message": message}})
        if not self._chunks(handler, reply, text, chunk, error):
            return
        self._write(
            handler,
            self._event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            reply,
        )
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": len(text)},
        }
        self._write(handler, self._event("message_delta", delta), reply)
        self._write(handler, self._event("message_stop", {"type": "message_stop"}), reply)
