"""OpenAI-compatible chat completions over httpx (OpenAI, vLLM, llama.cpp,
LM Studio, Ollama's /v1), streamed or not, cancellable, under one deadline.

Every failure becomes one `ModelError` whose message names the endpoint and
says what to do; the API key never appears in a message or a log line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import httpx

from ..config import DEFAULT_BASE_URL, ENV_API_KEY, ENV_BASE_URL, ENV_MODEL
from .base import ChatMessage, ModelError
from .http import Answers, HttpProvider, read_text
from .retry import Progress

log = logging.getLogger(__name__)


def _usage(answers: Answers, data: dict[str, Any]) -> None:
    usage = data.get("usage")
    if isinstance(usage, dict):
        answers.tokens(usage.get("prompt_tokens"), usage.get("completion_tokens"))
    answers.named(data.get("model"))


class OpenAICompatible(HttpProvider):
    """`POST {base_url}/chat/completions`, n answers, streamed when set."""

    provider = "openai"

    def _connect_hint(self) -> str:
        if self.endpoint == DEFAULT_BASE_URL.rstrip("/"):
            return (
                "Nothing answers at Ollama's default address: start Ollama "
                f"(`ollama serve`, then `ollama pull {self.model}`), or point "
                f"{ENV_BASE_URL} (and {ENV_MODEL}, {ENV_API_KEY}) at an OpenAI-compatible "
                "server."
            )
        return (
            f"Start the model server there, or set {ENV_BASE_URL} (and {ENV_MODEL}, "
            f"{ENV_API_KEY}) or the setting model.base_url to a running OpenAI-compatible server."
        )

    def _status_hint(self, status: int) -> str:
        if status == 404:
            return f" Check the model name ({self.model}) and that the base URL ends in /v1."
        return super()._status_hint(status)

    def _models_path(self) -> str:
        return "/models"

    async def _complete(
        self,
        messages: Sequence[ChatMessage],
        n: int,
        answers: Answers,
        deadline_at: float,
    ) -> None:
        await self._one(messages, n, 0, answers, deadline_at)
        missing = n - len(answers.text)
        if missing <= 0:
            return
        # the server ignored `n`: ask for the rest one by one
        first_free = len(answers.text)
        extra = await asyncio.gather(
            *(self._one(messages, 1, first_free + k, answers, deadline_at) for k in range(missing)),
            return_exceptions=True,
        )
        for failed in extra:  # the first answer stands without the extras
            if isinstance(failed, ModelError):
                log.info("an extra answer failed: %s", failed)
            elif isinstance(failed, BaseException):
                raise failed

    async def _one(
        self,
        messages: Sequence[ChatMessage],
        n: int,
        offset: int,
        answers: Answers,
        deadline_at: float,
    ) -> None:
        async def attempt(progress: Progress) -> None:
            await self._request(messages, n, offset, answers, progress)

        await self._retrying(attempt, deadline_at)

    def _body(self, messages: Sequence[ChatMessage], n: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
            "stream": self.settings.stream,
        }
        if n > 1:
            body["n"] = n
        return body

    async def _request(
        self,
        messages: Sequence[ChatMessage],
        n: int,
        offset: int,
        answers: Answers,
        progress: Progress,
    ) -> None:
        url = f"{self.endpoint}/chat/completions"
        async with self._open("POST", url, self._body(messages, n)) as resp:
            streamed = "json" not in resp.headers.get("content-type", "")
            if self.settings.stream and streamed:  # servers that ignore `stream` send JSON
                await self._read_stream(resp, offset, answers, progress)
            else:
                self._read_json(await read_text(resp), offset, answers)

    def _read_json(self, text: str, offset: int, answers: Answers) -> None:
        data = self._decode(text, "JSON", "answered an error")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            raise self._error(f"The model endpoint {self.endpoint} answered with no choices.")
        _usage(answers, data)
        for k, choice in enumerate(choices):
            message = choice.get("message") if isinstance(choice, dict) else None
            content = message.get("content") if isinstance(message, dict) else None
            index = choice.get("index", k) if isinstance(choice, dict) else k
            if not isinstance(index, int):
                index = k
            answers.whole(offset + index, content)

    async def _read_stream(
        self,
        resp: httpx.Response,
        offset: int,
        answers: Answers,
        progress: Progress,
    ) -> None:
        done = False
        seen: set[int] = set()
        async for line in resp.aiter_lines():
            if not line or line.startswith((":", "event:", "id:", "retry:")):
                continue
            if not line.startswith("data:"):
                raise self._malformed("server-sent events", line)
            payload = line[5:].strip()
            if payload == "[DONE]":
                done = True
                break
            data = self._decode(payload, "server-sent events", "sent an error mid-stream")
            _usage(answers, data)
            for choice in data.get("choices") or []:
                if not isinstance(choice, dict):
                    continue
                index = choice.get("index", 0)
                index = offset + (index if isinstance(index, int) else 0)
                seen.add(index)
                delta = choice.get("delta") or {}
                content = delta.get("content") if isinstance(delta, dict) else None
                answers.delta(index, content, progress)
                if choice.get("finish_reason"):
                    answers.finished.add(index)
        if not done and not (seen and seen <= answers.finished):
            raise self._cut()
        if not seen:
            raise self._error(f"The model endpoint {self.endpoint} answered with no choices.")
