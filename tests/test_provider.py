"""The OpenAI-compatible provider against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace

import pytest

from ocaml_ai_ls.config import ModelSettings
from ocaml_ai_ls.providers import ChatMessage, ModelError, OpenAICompatible
from tests.model_server import Reply, ScriptedModel

MESSAGES = [ChatMessage("system", "s"), ChatMessage("user", "u")]


def provider(model: ScriptedModel, key: str | None = None, **changes: object) -> OpenAICompatible:
    settings = replace(ModelSettings(base_url=model.base_url, model="m"), **changes)  # type: ignore[arg-type]
    return OpenAICompatible(settings, key)


async def test_streamed_answers_with_deltas(model: ScriptedModel) -> None:
    model.enqueue(Reply(answers="hello world, streamed", chunk_size=3))
    deltas: list[tuple[int, str]] = []
    p = provider(model)
    reply = await p.complete(MESSAGES, on_delta=lambda i, t: deltas.append((i, t)))
    await p.aclose()
    assert reply.answers == ("hello world, streamed",)
    assert "".join(t for _, t in deltas) == "hello world, streamed" and len(deltas) > 3
    assert reply.first_token_ms is not None and model.requests[0]["stream"] is True


async def test_not_streamed(model: ScriptedModel) -> None:
    model.enqueue("plain answer")
    p = provider(model, stream=False)
    reply = await p.complete(MESSAGES)
    await p.aclose()
    assert reply.answers == ("plain answer",) and reply.prompt_tokens == 10
    assert model.requests[0]["stream"] is False


async def test_n_answers_from_a_server_that_ignores_n(model: ScriptedModel) -> None:
    model.enqueue(Reply(answers=["a", "b", "c"], ignore_n=True), "b", "c")
    p = provider(model)
    reply = await p.complete(MESSAGES, n=3)
    await p.aclose()
    assert sorted(reply.answers) == ["a", "b", "c"] and len(model.requests) == 3
    assert model.requests[0]["n"] == 3 and "n" not in model.requests[1]


async def test_http_errors_name_the_endpoint_and_never_the_key(model: ScriptedModel) -> None:
    model.enqueue(Reply(status=401, body='{"error": "bad key sk-123456"}'))
    p = provider(model, "sk-123456")
    with pytest.raises(ModelError) as err:
        await p.complete(MESSAGES)
    await p.aclose()
    text = str(err.value)
    assert "401" in text and model.base_url in text and "OCAML_AI_API_KEY" in text
    assert "sk-123456" not in text
    assert model.headers[0]["authorization"] == "Bearer sk-123456"


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (Reply(body="{not json", stream=False), "malformed JSON"),
        (Reply(status=200, body="garbage\n", stream=True), "malformed"),
        (Reply(answers="x" * 200, chunk_size=5, cut_after=3), "closed the stream"),
    ],
)
async def test_malformed_answers(model: ScriptedModel, reply: Reply, words: str) -> None:
    model.enqueue(reply)
    p = provider(model, stream=reply.stream if reply.stream is not None else True)
    with pytest.raises(ModelError, match=words):
        await p.complete(MESSAGES)
    await p.aclose()


async def test_connection_refused_says_what_to_start() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    p = OpenAICompatible(ModelSettings(base_url=f"http://127.0.0.1:{port}/v1"))
    with pytest.raises(ModelError, match="OCAML_AI_BASE_URL"):
        await p.complete(MESSAGES)
    await p.aclose()


async def test_deadline_ends_a_hang(model: ScriptedModel) -> None:
    model.enqueue(Reply(answers="late", hang=30))
    p = provider(model, deadline=0.5)
    with pytest.raises(ModelError, match=r"did not finish within 0\.5 s"):
        await asyncio.wait_for(p.complete(MESSAGES), 10)
    await p.aclose()


async def test_cancelling_closes_the_stream(model: ScriptedModel) -> None:
    model.enqueue(Reply(answers="y" * 2000, chunk_size=2, chunk_delay=0.05))
    p = provider(model)
    task = asyncio.ensure_future(p.complete(MESSAGES))
    while not model.requests:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert model.wait_for_disconnect(2)
    await p.aclose()
