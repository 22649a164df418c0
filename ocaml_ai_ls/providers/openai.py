"""OpenAI-compatible chat completions over httpx (OpenAI, vLLM, llama.cpp,
LM Studio, Ollama's /v1), streamed or not, cancellable, under one deadline.

Every failure becomes one `ModelError` whose message names the endpoint and
says what to do; the API key never appears in a message or a log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import httpx

from ..config import DEFAULT_BASE_URL, ENV_API_KEY, ENV_BASE_URL, ENV_MODEL, ModelSettings
from .base import ChatMessage, DeltaCallback, ModelError, ModelReply

log = logging.getLogger(__name__)
EXCERPT = 200


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT else flat[: EXCERPT - 1] + "…"


class _Answers:
    """Collects choices by index as they arrive."""

    def __init__(self) -> None:
        self.text: dict[int, list[str]] = {}
        self.finished: set[int] = set()
        self.model: str | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.first_token_ms: float | None = None

    def usage(self, data: dict[str, Any]) -> None:
        usage = data.get("usage")
        if isinstance(usage, dict):
            if isinstance(usage.get("prompt_tokens"), int):
                self.prompt_tokens = (self.prompt_tokens or 0) + usage["prompt_tokens"]
            if isinstance(usage.get("completion_tokens"), int):
                self.completion_tokens = (self.completion_tokens or 0) + usage["completion_tokens"]
        if isinstance(data.get("model"), str) and self.model is None:
            self.model = data["model"]


class OpenAICompatible:
    """`POST {base_url}/chat/completions`, n answers, streamed when set."""

    def __init__(
        self,
        settings: ModelSettings,
        api_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._key = api_key
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.request_timeout),
            headers=headers,
            transport=transport,
        )

    @property
    def endpoint(self) -> str:
        return self.settings.base_url.rstrip("/")

    @property
    def model(self) -> str:
        return self.settings.model

    async def aclose(self) -> None:
        await self._client.aclose()

    def _error(self, message: str) -> ModelError:
        if self._key:
            message = message.replace(self._key, "***")
        return ModelError(message)

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        n: int = 1,
        on_delta: DeltaCallback | None = None,
    ) -> ModelReply:
        started = time.monotonic()
        answers = _Answers()
        try:
            async with asyncio.timeout(self.settings.deadline):
                await self._request(messages, n, 0, answers, on_delta, started)
                missing = n - len(answers.text)
                if missing > 0:  # the server ignored `n`: ask for the rest one by one
                    extra = await asyncio.gather(
                        *(
                            self._request(
                                messages, 1, len(answers.text) + k, answers, on_delta, started
                            )
                            for k in range(missing)
                        ),
                        return_exceptions=True,
                    )
                    for failed in extra:  # the first answer stands without the extras
                        if isinstance(failed, ModelError):
                            log.info("an extra answer failed: %s", failed)
                        elif isinstance(failed, BaseException):
                            raise failed
        except TimeoutError:
            raise self._error(
                f"The model endpoint {self.endpoint} did not finish within "
                f"{self.settings.deadline:g} s (model.deadline)."
            ) from None
        ordered = [("".join(answers.text[i])) for i in sorted(answers.text)]
        return ModelReply(
            answers=tuple(ordered[:n]),
            model=answers.model or self.model,
            prompt_tokens=answers.prompt_tokens,
            completion_tokens=answers.completion_tokens,
            first_token_ms=answers.first_token_ms,
            total_ms=(time.monotonic() - started) * 1000,
        )

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
        answers: _Answers,
        on_delta: DeltaCallback | None,
        started: float,
    ) -> None:
        url = f"{self.endpoint}/chat/completions"
        log.debug("POST %s model=%s n=%d stream=%s", url, self.model, n, self.settings.stream)
        try:
            async with self._client.stream("POST", url, json=self._body(messages, n)) as resp:
                if resp.status_code >= 400:
                    body = (await resp.aread()).decode("utf-8", "replace")
                    raise self._http_error(resp.status_code, body)
                streamed = "json" not in resp.headers.get("content-type", "")
                if self.settings.stream and streamed:  # servers that ignore `stream` send JSON
                    await self._read_stream(resp, offset, answers, on_delta, started)
                else:
                    self._read_json(
                        (await resp.aread()).decode("utf-8", "replace"), offset, answers
                    )
        except httpx.ConnectError as exc:
            raise self._error(self._connect_message(exc)) from None
        except httpx.TimeoutException:
            raise self._error(
                f"The model endpoint {self.endpoint} did not answer within "
                f"{self.settings.request_timeout:g} s (model.request_timeout)."
            ) from None
        except (httpx.RemoteProtocolError, httpx.ReadError):
            raise self._error(
                f"The model endpoint {self.endpoint} closed the stream before the answer "
                "was complete."
            ) from None
        except httpx.HTTPError as exc:
            raise self._error(f"The model endpoint {self.endpoint} failed: {exc}") from None

    def _connect_message(self, exc: Exception) -> str:
        what = f"Cannot reach the model endpoint {self.endpoint} ({_excerpt(str(exc))})."
        if self.endpoint == DEFAULT_BASE_URL.rstrip("/"):
            return (
                f"{what} Nothing answers at Ollama's default address: start Ollama "
                f"(`ollama serve`, then `ollama pull {self.model}`), or point "
                f"{ENV_BASE_URL} (and {ENV_MODEL}, {ENV_API_KEY}) at an OpenAI-compatible "
                "server."
            )
        return (
            f"{what} Start the model server there, or set {ENV_BASE_URL} (and {ENV_MODEL}, "
            f"{ENV_API_KEY}) or the setting model.base_url to a running OpenAI-compatible server."
        )

    def _http_error(self, status: int, body: str) -> ModelError:
        hint = ""
        if status in (401, 403):
            hint = f" Check the API key in {ENV_API_KEY} (or model.api_key_env)."
        elif status == 404:
            hint = f" Check the model name ({self.model}) and that the base URL ends in /v1."
        return self._error(
            f"The model endpoint {self.endpoint} answered HTTP {status}: {_excerpt(body)}{hint}"
        )

    def _malformed(self, what: str, text: str) -> ModelError:
        return self._error(
            f"The model endpoint {self.endpoint} sent malformed {what}: {_excerpt(text)}"
        )

    def _decode(self, text: str, what: str, error_phrase: str) -> dict[str, Any]:
        """One JSON object from the server, or the ModelError that says what was wrong."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise self._malformed(what, text) from None
        if not isinstance(data, dict):
            raise self._malformed(what, text)
        if "error" in data:
            raise self._error(
                f"The model endpoint {self.endpoint} {error_phrase}: "
                f"{_excerpt(json.dumps(data['error']))}"
            )
        return data

    def _read_json(self, text: str, offset: int, answers: _Answers) -> None:
        data = self._decode(text, "JSON", "answered an error")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            raise self._error(f"The model endpoint {self.endpoint} answered with no choices.")
        answers.usage(data)
        for k, choice in enumerate(choices):
            message = choice.get("message") if isinstance(choice, dict) else None
            content = message.get("content") if isinstance(message, dict) else None
            index = choice.get("index", k) if isinstance(choice, dict) else k
            if not isinstance(index, int):
                index = k
            answers.text[offset + index] = [content if isinstance(content, str) else ""]
            answers.finished.add(offset + index)

    async def _read_stream(
        self,
        resp: httpx.Response,
        offset: int,
        answers: _Answers,
        on_delta: DeltaCallback | None,
        started: float,
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
            answers.usage(data)
            for choice in data.get("choices") or []:
                if not isinstance(choice, dict):
                    continue
                index = choice.get("index", 0)
                index = offset + (index if isinstance(index, int) else 0)
                seen.add(index)
                delta = choice.get("delta") or {}
                content = delta.get("content") if isinstance(delta, dict) else None
                if isinstance(content, str) and content:
                    answers.text.setdefault(index, []).append(content)
                    if answers.first_token_ms is None:
                        answers.first_token_ms = (time.monotonic() - started) * 1000
                    if on_delta is not None:
                        try:
                            on_delta(index, content)
                        except Exception:
                            log.exception("on_delta failed")
                else:
                    answers.text.setdefault(index, [])
                if choice.get("finish_reason"):
                    answers.finished.add(index)
        if not done and not (seen and seen <= answers.finished):
            raise self._error(
                f"The model endpoint {self.endpoint} closed the stream before the answer "
                "was complete."
            )
        if not seen:
            raise self._error(f"The model endpoint {self.endpoint} answered with no choices.")
