"""Ollama's native chat API: `POST {base_url}/api/chat`, streamed as NDJSON.

The native API reports exact token counts and takes Ollama's own options
(`num_predict`); it has no `n`, so `n` answers are `n` requests at once.
`base_url` is the server's address (`http://127.0.0.1:11434`); a trailing
`/v1` (the OpenAI-compatible path, our default) is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from .base import ChatMessage
from .http import Answers, OneRequestPerAnswer, read_text, server_root
from .retry import Progress


class Ollama(OneRequestPerAnswer):
    """`POST {base_url}/api/chat`, one request per answer."""

    provider = "ollama"

    @property
    def endpoint(self) -> str:
        return server_root(self.settings.base_url, ("/v1", "/api"))

    def _connect_hint(self) -> str:
        return (
            f"Start Ollama (`ollama serve`, then `ollama pull {self.model}`), or set "
            "model.base_url to the address it listens on (e.g. http://127.0.0.1:11434)."
        )

    def _status_hint(self, status: int) -> str:
        if status == 404:
            return (
                f" Check the model name ({self.model}): `ollama pull {self.model}` fetches it;"
                " model.base_url is Ollama's address, without /v1."
            )
        return super()._status_hint(status)

    def _models_path(self) -> str:
        return "/api/tags"

    def _model_names(self, data: dict[str, Any]) -> list[str]:
        entries = data.get("models")
        if not isinstance(entries, list):
            raise self._malformed("a model list", str(data))
        names = (e.get("name") or e.get("model") for e in entries if isinstance(e, dict))
        return [name for name in names if isinstance(name, str)]

    def _body(self, messages: Sequence[ChatMessage]) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": self.settings.stream,
            "options": {
                "temperature": self.settings.temperature,
                "num_predict": self.settings.max_tokens,
            },
        }

    async def _request(
        self,
        messages: Sequence[ChatMessage],
        index: int,
        answers: Answers,
        progress: Progress,
    ) -> None:
        url = f"{self.endpoint}/api/chat"
        async with self._open("POST", url, self._body(messages)) as resp:
            kind = resp.headers.get("content-type", "")
            if self.settings.stream and not kind.startswith("application/json"):
                await self._read_stream(resp, index, answers, progress)
            else:  # asked so, or a server that ignored `stream`
                self._read_whole(await read_text(resp), index, answers)

    def _message_text(self, data: dict[str, Any]) -> object:
        message = data.get("message")
        return message.get("content") if isinstance(message, dict) else None

    def _read_whole(self, text: str, index: int, answers: Answers) -> None:
        data = self._decode(text, "JSON", "answered an error")
        content = self._message_text(data)
        if not isinstance(content, str):
            raise self._malformed("JSON (no message)", text)
        answers.whole(index, content)
        answers.tokens(data.get("prompt_eval_count"), data.get("eval_count"))
        answers.named(data.get("model"))

    async def _read_stream(
        self, resp: httpx.Response, index: int, answers: Answers, progress: Progress
    ) -> None:
        async for line in resp.aiter_lines():
            if not line.strip():
                continue
            data = self._decode(line, "NDJSON", "sent an error mid-stream")
            answers.delta(index, self._message_text(data), progress)
            if data.get("done") is True:
                answers.finished.add(index)
                answers.tokens(data.get("prompt_eval_count"), data.get("eval_count"))
                answers.named(data.get("model"))
                return
        raise self._cut()
