"""What every HTTP model backend shares: one httpx client, the deadline, retries,
and failures turned into one clear `ModelError` that names the endpoint.

A backend (`openai.py`, `ollama.py`, `anthropic.py`) only says how to build its
request and read its answer; the API key is scrubbed from every message here and
never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import cache
from typing import Any, Protocol, TypeVar

import httpx

from ..config import ENV_API_KEY, ModelSettings
from ..source_text import displayable
from .base import ChatMessage, DeltaCallback, ModelError, ModelReply, Provider
from .retry import RETRY_STATUSES, Backoff, Progress, Retryable, parse_retry_after, with_retries

log = logging.getLogger(__name__)
T = TypeVar("T")
EXCERPT = 200


class ManagedProvider(Provider, Protocol):
    """A provider the server owns: it names its wire format, lists models, closes."""

    @property
    def provider(self) -> str: ...

    async def list_models(self) -> list[str]: ...

    async def aclose(self) -> None: ...


def excerpt(text: str, limit: int = EXCERPT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def error_detail(error: Any) -> str:
    """The readable part of an error object: OpenAI's `{message}`, Anthropic's
    `{type, message}`, Ollama's plain string."""
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        inner = error.get("error")
        if inner is not None and inner is not error:
            return error_detail(inner)
        message = error.get("message")
        if isinstance(message, str):
            kind = error.get("type")
            return f"{kind}: {message}" if isinstance(kind, str) and kind != "error" else message
    return json.dumps(error)


def server_root(base_url: str, suffixes: tuple[str, ...]) -> str:
    """`base_url` without a trailing slash or an API path the user included."""
    root = base_url.rstrip("/")
    for suffix in suffixes:
        if root.endswith(suffix):
            return root[: -len(suffix)]
    return root


def _body_detail(body: str) -> str:
    """An HTTP error body as text worth showing (the message if it is JSON)."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return excerpt(body)
    if isinstance(data, dict) and ("error" in data or "message" in data):
        return excerpt(error_detail(data))
    return excerpt(body)


class Answers:
    """The answers of one call as they arrive, by candidate index, and what they cost."""

    def __init__(self, started: float, on_delta: DeltaCallback | None) -> None:
        self.started = started
        self.on_delta = on_delta
        self.text: dict[int, list[str]] = {}
        self.finished: set[int] = set()
        self.model: str | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.first_token_ms: float | None = None

    def tokens(self, prompt: object, completion: object) -> None:
        """Add one request's token counts (ignored unless they are integers)."""
        if isinstance(prompt, int) and not isinstance(prompt, bool):
            self.prompt_tokens = (self.prompt_tokens or 0) + prompt
        if isinstance(completion, int) and not isinstance(completion, bool):
            self.completion_tokens = (self.completion_tokens or 0) + completion

    def named(self, model: object) -> None:
        if isinstance(model, str) and model and self.model is None:
            self.model = model

    def delta(self, index: int, text: object, progress: Progress) -> None:
        """A piece of a streamed answer: kept, timed, and passed to `on_delta`."""
        parts = self.text.setdefault(index, [])
        if not isinstance(text, str) or not text:
            return
        progress.delivered = True
        parts.append(text)
        if self.first_token_ms is None:
            self.first_token_ms = (time.monotonic() - self.started) * 1000
        if self.on_delta is not None:
            try:
                self.on_delta(index, text)
            except Exception:
                log.exception("on_delta failed")

    def whole(self, index: int, text: object) -> None:
        """A whole answer at once (not streamed)."""
        self.text[index] = [text if isinstance(text, str) else ""]
        self.finished.add(index)

    def reply(self, n: int, model: str) -> ModelReply:
        ordered = ["".join(self.text[i]) for i in sorted(self.text)]
        return ModelReply(
            answers=tuple(ordered[:n]),
            model=self.model or model,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            first_token_ms=self.first_token_ms,
            total_ms=(time.monotonic() - self.started) * 1000,
        )


@cache
def _tls() -> ssl.SSLContext:
    """The certificates every https client verifies with, loaded once: loading them
    costs 20-30 ms per client. A plain-http endpoint (a local model) needs none."""
    return httpx.create_ssl_context()


class HttpProvider:
    """The shared half of a backend; subclasses set `provider` and implement
    `_complete`, `_models_path` and `_model_names`."""

    #: The wire format: "openai", "ollama" or "anthropic".
    provider: str = ""

    def __init__(
        self,
        settings: ModelSettings,
        api_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.settings = settings
        self._key = api_key
        self._backoff = backoff or Backoff()
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.request_timeout),
            headers=self._headers(api_key),
            transport=transport,
            verify=_tls() if settings.base_url.lower().startswith("https:") else False,
        )

    # -- what a backend says about itself ----------------------------------------

    @property
    def endpoint(self) -> str:
        return self.settings.base_url.rstrip("/")

    @property
    def model(self) -> str:
        return self.settings.model

    def _headers(self, api_key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def _connect_hint(self) -> str:
        return "Start the model server there, or check the setting model.base_url."

    def _status_hint(self, status: int) -> str:
        if status in (401, 403):
            return f" Check the API key in {self._key_source()}."
        if status == 429:
            return " The service limits requests: wait a little, or raise model.retries."
        return ""

    def _key_source(self) -> str:
        env = self.settings.api_key_env
        return f"{env} (or {ENV_API_KEY})" if env else f"{ENV_API_KEY} (or model.api_key_env)"

    def _models_path(self) -> str:
        raise NotImplementedError

    def _model_names(self, data: dict[str, Any]) -> list[str]:
        """The ids of an OpenAI-style list `{"data": [{"id": ...}]}` (OpenAI, Anthropic)."""
        entries = data.get("data")
        if not isinstance(entries, list):
            raise self._malformed("a model list", str(data))
        return [e["id"] for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)]

    async def _complete(
        self,
        messages: Sequence[ChatMessage],
        n: int,
        answers: Answers,
        deadline_at: float,
    ) -> None:
        raise NotImplementedError

    # -- the public surface --------------------------------------------------------

    async def aclose(self) -> None:
        await self._client.aclose()

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        n: int = 1,
        on_delta: DeltaCallback | None = None,
    ) -> ModelReply:
        started = time.monotonic()
        answers = Answers(started, on_delta)
        async with self._deadline(started):
            await self._complete(messages, n, answers, started + self.settings.deadline)
        return answers.reply(n, self.model)

    async def list_models(self) -> list[str]:
        """The models the endpoint offers (for `doctor`), or a ModelError saying why not."""
        started = time.monotonic()
        url = f"{self.endpoint}{self._models_path()}"

        async def attempt(progress: Progress) -> list[str]:
            async with self._open("GET", url) as resp:
                data = self._decode(await read_text(resp), "JSON", "answered an error")
                return self._model_names(data)

        async with self._deadline(started):
            return await self._retrying(attempt, started + self.settings.deadline)

    # -- plumbing for the backends ---------------------------------------------------

    @asynccontextmanager
    async def _deadline(self, started: float) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.settings.deadline - (time.monotonic() - started)):
                yield
        except TimeoutError:
            raise self._error(
                f"The model endpoint {self.endpoint} did not finish within "
                f"{self.settings.deadline:g} s (model.deadline)."
            ) from None

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _error(self, message: str) -> ModelError:
        return ModelError(self._scrub(message))

    def _retryable(self, message: str, summary: str, retry_after: float | None = None) -> Retryable:
        return Retryable(self._scrub(message), self._scrub(summary), retry_after)

    def _cut(self) -> Retryable:
        """The stream ended early; worth another try only if no text came yet."""
        return self._retryable(
            f"The model endpoint {self.endpoint} closed the stream before the answer was complete.",
            "the stream closed early",
        )

    async def _retrying(self, attempt: Callable[[Progress], Awaitable[T]], deadline_at: float) -> T:
        return await with_retries(attempt, self.settings.retries, deadline_at, self._backoff)

    @asynccontextmanager
    async def _open(
        self, method: str, url: str, body: dict[str, Any] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """A response with a success status, streaming; every transport failure (also
        while the caller reads it) becomes a ModelError, retryable where that helps."""
        log.debug("%s %s model=%s stream=%s", method, url, self.model, self.settings.stream)
        try:
            # a prompt may quote bytes that are not UTF-8 (see source_text): shown as U+FFFD
            safe = displayable(body) if body is not None else None
            async with self._client.stream(method, url, json=safe) as resp:
                if resp.status_code >= 400:
                    raise self._http_error(resp.status_code, await read_text(resp), resp.headers)
                yield resp
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise self._retryable(
                f"Cannot reach the model endpoint {self.endpoint} ({excerpt(str(exc))}). "
                + self._connect_hint(),
                "no connection",
            ) from None
        except httpx.TimeoutException:
            raise self._error(
                f"The model endpoint {self.endpoint} did not answer within "
                f"{self.settings.request_timeout:g} s (model.request_timeout)."
            ) from None
        except (httpx.RemoteProtocolError, httpx.ReadError):
            raise self._cut() from None
        except httpx.HTTPError as exc:
            raise self._error(
                f"The model endpoint {self.endpoint} failed: {excerpt(str(exc))}"
            ) from None

    def _http_error(self, status: int, body: str, headers: httpx.Headers) -> ModelError:
        detail = _body_detail(body)
        message = (
            f"The model endpoint {self.endpoint} answered HTTP {status}: {detail}"
            f"{self._status_hint(status)}"
        )
        if status in RETRY_STATUSES:
            summary = f"HTTP {status}: {excerpt(detail, 80)}"
            return self._retryable(message, summary, parse_retry_after(headers.get("retry-after")))
        return self._error(message)

    def _malformed(self, what: str, text: str) -> ModelError:
        return self._error(
            f"The model endpoint {self.endpoint} sent malformed {what}: {excerpt(text)}"
        )

    def _decode(self, text: str, what: str, error_phrase: str) -> dict[str, Any]:
        """One JSON object from the server, or the ModelError that says what was wrong."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise self._malformed(what, text) from None
        if not isinstance(data, dict):
            raise self._malformed(what, text)
        if data.get("error") is not None:
            raise self._error(
                f"The model endpoint {self.endpoint} {error_phrase}: "
                f"{excerpt(error_detail(data['error']))}"
            )
        return data


class OneRequestPerAnswer(HttpProvider):
    """A chat API without `n` (Ollama, Anthropic): `n` answers come from `n` requests at
    once, each retried on its own."""

    async def _complete(
        self,
        messages: Sequence[ChatMessage],
        n: int,
        answers: Answers,
        deadline_at: float,
    ) -> None:
        async def one(index: int) -> None:
            async def attempt(progress: Progress) -> None:
                await self._request(messages, index, answers, progress)

            await self._retrying(attempt, deadline_at)

        await self._each(n, one)

    async def _each(self, n: int, one: Callable[[int], Awaitable[None]]) -> None:
        """Ask for `n` answers at once, one request each (for APIs without `n`).

        The call fails only if every request failed; cancelling it cancels them all.
        """
        results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        for err in failed:
            if not isinstance(err, ModelError):
                raise err
        if failed and len(failed) == n:
            raise failed[0]
        for err in failed:  # the others stand without it
            log.info("one of %d answers failed: %s", n, err)

    async def _request(
        self,
        messages: Sequence[ChatMessage],
        index: int,
        answers: Answers,
        progress: Progress,
    ) -> None:
        """One request for answer `index`."""
        raise NotImplementedError


async def read_text(resp: httpx.Response) -> str:
    """The whole body of a response as text."""
    return (await resp.aread()).decode("utf-8", "replace")
