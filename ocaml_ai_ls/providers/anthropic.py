"""Anthropic's Messages API: `POST {base_url}/v1/messages`, streamed as SSE.

System messages go in the top-level `system` field (the API has no system
role); there is no `n`, so `n` answers are `n` requests at once. An `error`
event mid-stream (Anthropic sends `overloaded_error` so) is retried like a 529
as long as no text of that answer has arrived.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from .base import ChatMessage, ModelError
from .http import Answers, OneRequestPerAnswer, error_detail, excerpt, read_text, server_root
from .retry import Progress

API_VERSION = "2023-06-01"
#: Error event types that say "try again", as the statuses 429, 500 and 529 do.
TRANSIENT_ERRORS = frozenset({"overloaded_error", "api_error", "rate_limit_error"})


class Anthropic(OneRequestPerAnswer):
    """`POST {base_url}/v1/messages`, one request per answer."""

    provider = "anthropic"

    @property
    def endpoint(self) -> str:
        return server_root(self.settings.base_url, ("/v1",))

    def _headers(self, api_key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        return headers

    def _connect_hint(self) -> str:
        return (
            "Check the network, and that model.base_url is the API's address "
            "(e.g. https://api.anthropic.com)."
        )

    def _status_hint(self, status: int) -> str:
        if status == 404:
            return (
                f" Check the model name ({self.model}) and that model.base_url is the API's "
                "address (e.g. https://api.anthropic.com), without /v1/messages."
            )
        return super()._status_hint(status)

    def _models_path(self) -> str:
        return "/v1/models?limit=1000"

    def _body(self, messages: Sequence[ChatMessage]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.settings.max_tokens,
            "temperature": min(self.settings.temperature, 1.0),  # the API's range is [0, 1]
            "messages": [
                {"role": m.role, "content": m.content} for m in messages if m.role != "system"
            ],
            "stream": self.settings.stream,
        }
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        if system:
            body["system"] = system
        return body

    async def _request(
        self,
        messages: Sequence[ChatMessage],
        index: int,
        answers: Answers,
        progress: Progress,
    ) -> None:
        url = f"{self.endpoint}/v1/messages"
        async with self._open("POST", url, self._body(messages)) as resp:
            kind = resp.headers.get("content-type", "")
            if self.settings.stream and "json" not in kind:
                await self._read_stream(resp, index, answers, progress)
            else:  # asked so, or a server that ignored `stream`
                self._read_whole(await read_text(resp), index, answers)

    def _read_whole(self, text: str, index: int, answers: Answers) -> None:
        data = self._decode(text, "JSON", "answered an error")
        content = data.get("content")
        if not isinstance(content, list):
            raise self._malformed("JSON (no content)", text)
        parts = [
            b["text"]
            for b in content
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        ]
        answers.whole(index, "".join(parts))
        usage = data.get("usage")
        if isinstance(usage, dict):
            answers.tokens(usage.get("input_tokens"), usage.get("output_tokens"))
        answers.named(data.get("model"))

    def _event_error(self, data: dict[str, Any]) -> ModelError:
        error = data.get("error")
        kind = error.get("type") if isinstance(error, dict) else None
        message = (
            f"The model endpoint {self.endpoint} sent an error mid-stream: "
            f"{excerpt(error_detail(error))}"
        )
        if kind in TRANSIENT_ERRORS:
            return self._retryable(message, excerpt(error_detail(error), 80))
        return self._error(message)

    def _event(self, payload: str) -> dict[str, Any]:
        try:
            data = json.loads(payload)
        except json.JSONDecodeError:
            raise self._malformed("server-sent events", payload) from None
        if not isinstance(data, dict):
            raise self._malformed("server-sent events", payload)
        return data

    async def _read_stream(
        self, resp: httpx.Response, index: int, answers: Answers, progress: Progress
    ) -> None:
        prompt: object = None
        completion: object = None
        async for line in resp.aiter_lines():
            if not line or line.startswith((":", "event:", "id:", "retry:")):
                continue  # the `type` inside each event's data says what it is
            if not line.startswith("data:"):
                raise self._malformed("server-sent events", line)
            data = self._event(line[5:].strip())
            kind = data.get("type")
            if kind == "error":
                raise self._event_error(data)
            if kind == "message_start":
                message = data.get("message")
                if isinstance(message, dict):
                    answers.named(message.get("model"))
                    usage = message.get("usage")
                    if isinstance(usage, dict):
                        prompt = usage.get("input_tokens")
                        completion = usage.get("output_tokens", completion)
                answers.delta(index, None, progress)
            elif kind == "content_block_delta":
                delta = data.get("delta")
                if isinstance(delta, dict) and delta.get("type") == "text_delta":
                    answers.delta(index, delta.get("text"), progress)
            elif kind == "message_delta":
                usage = data.get("usage")
                if isinstance(usage, dict) and "output_tokens" in usage:
                    completion = usage["output_tokens"]  # a running total, not an increment
            elif kind == "message_stop":
                answers.finished.add(index)
                answers.tokens(prompt, completion)
                return
            # ping, content_block_start/stop and event types added later: nothing to do
        raise self._cut()
