"""The Ollama and Anthropic providers against real HTTP servers on 127.0.0.1 that
speak each wire format (tests/wire_servers.py), streamed and not."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace

import pytest

from ocaml_ai_ls.config import ModelSettings
from ocaml_ai_ls.providers import (
    BACKENDS,
    Anthropic,
    Backoff,
    ChatMessage,
    HttpProvider,
    ModelError,
    Ollama,
    OpenAICompatible,
)
from tests.model_server import Reply, ScriptedModel
from tests.wire_servers import AnthropicModel, OllamaModel, WireReply

MESSAGES = [
    ChatMessage("system", "be terse"),
    ChatMessage("system", "OCaml only"),
    ChatMessage("user", "make it tail recursive"),
]
FAST = Backoff(base=0.01, cap=0.02)
PATHS = {"ollama": "/api/chat", "anthropic": "/v1/messages"}


def kind_of(server: ScriptedModel) -> str:
    return "ollama" if isinstance(server, OllamaModel) else "anthropic"


@pytest.fixture(params=["ollama", "anthropic"])
def wire(request: pytest.FixtureRequest) -> Iterator[ScriptedModel]:
    server = (OllamaModel if request.param == "ollama" else AnthropicModel)().start()
    try:
        yield server
    finally:
        server.stop()


def provider(server: ScriptedModel, key: str | None = None, **changes: object) -> HttpProvider:
    kind = kind_of(server)
    settings = ModelSettings(provider=kind, base_url=server.base_url, model="m")
    settings = replace(settings, **changes)  # type: ignore[arg-type]
    return BACKENDS[kind](settings, key, backoff=FAST)


async def test_streamed_answer_with_deltas_and_token_counts(wire: ScriptedModel) -> None:
    wire.enqueue(WireReply(answers="let rec go acc = function", chunk_size=3, model="served"))
    deltas: list[tuple[int, str]] = []
    p = provider(wire)
    reply = await p.complete(MESSAGES, on_delta=lambda i, t: deltas.append((i, t)))
    await p.aclose()
    assert reply.answers == ("let rec go acc = function",) and reply.model == "served"
    assert "".join(t for _, t in deltas) == reply.answers[0] and len(deltas) > 3
    assert {i for i, _ in deltas} == {0}
    assert (reply.prompt_tokens, reply.completion_tokens) == (7, len(reply.answers[0]))
    assert reply.first_token_ms is not None and reply.total_ms >= reply.first_token_ms
    assert wire.paths == [PATHS[kind_of(wire)]] and wire.requests[0]["stream"] is True
    assert p.provider == kind_of(wire)


async def test_not_streamed(wire: ScriptedModel) -> None:
    wire.enqueue("plain answer")
    p = provider(wire, stream=False)
    reply = await p.complete(MESSAGES)
    await p.aclose()
    assert reply.answers == ("plain answer",)
    assert (reply.prompt_tokens, reply.completion_tokens) == (7, len("plain answer"))
    assert wire.requests[0]["stream"] is False and reply.first_token_ms is None


async def test_a_server_that_ignores_stream_is_read_whole(wire: ScriptedModel) -> None:
    wire.enqueue(Reply(answers="whole anyway", stream=False))
    p = provider(wire, stream=True)
    reply = await p.complete(MESSAGES)
    await p.aclose()
    assert reply.answers == ("whole anyway",)


async def test_ollama_request_body(ollama: OllamaModel) -> None:
    ollama.enqueue("ok")
    p = Ollama(ModelSettings(provider="ollama", base_url=ollama.base_url, model="qwen"), "k-1")
    await p.complete(MESSAGES)
    await p.aclose()
    [body] = ollama.requests
    assert body["model"] == "qwen" and body["stream"] is True
    assert body["options"] == {"temperature": 0.2, "num_predict": 2048}
    assert [m["role"] for m in body["messages"]] == ["system", "system", "user"]
    assert ollama.headers[0]["authorization"] == "Bearer k-1"


async def test_ollama_takes_the_openai_style_base_url_too(ollama: OllamaModel) -> None:
    ollama.enqueue("ok")
    p = Ollama(ModelSettings(provider="ollama", base_url=ollama.base_url + "/v1/", model="m"))
    assert p.endpoint == ollama.base_url
    assert (await p.complete(MESSAGES)).answers == ("ok",)
    await p.aclose()
    assert ollama.paths == ["/api/chat"]


async def test_anthropic_request_body_and_headers(anthropic: AnthropicModel) -> None:
    anthropic.enqueue("ok")
    settings = ModelSettings(
        provider="anthropic", base_url=anthropic.base_url, model="claude", temperature=1.5
    )
    p = Anthropic(settings, "sk-ant-1")
    await p.complete([*MESSAGES, ChatMessage("assistant", "sure"), ChatMessage("user", "go")])
    await p.aclose()
    [body] = anthropic.requests
    assert body["system"] == "be terse\n\nOCaml only"
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["max_tokens"] == 2048 and body["temperature"] == 1.0 and body["model"] == "claude"
    headers = anthropic.headers[0]
    assert headers["x-api-key"] == "sk-ant-1" and headers["anthropic-version"] == "2023-06-01"
    assert headers["content-type"] == "application/json" and "authorization" not in headers


async def test_n_answers_are_n_concurrent_requests(wire: ScriptedModel) -> None:
    wire.enqueue(
        WireReply(answers="a", chunk_delay=0.05),
        WireReply(answers="b", chunk_delay=0.05),
        WireReply(answers="c", chunk_delay=0.05),
    )
    deltas: list[int] = []
    p = provider(wire)
    reply = await p.complete(MESSAGES, n=3, on_delta=lambda i, t: deltas.append(i))
    await p.aclose()
    assert sorted(reply.answers) == ["a", "b", "c"] and len(wire.requests) == 3
    assert sorted(deltas) == [0, 1, 2]
    assert max(wire.times) - min(wire.times) < 0.1  # all asked at once, not one by one
    assert (reply.prompt_tokens, reply.completion_tokens) == (21, 3)
    assert all("n" not in body for body in wire.requests)


async def test_one_of_n_failing_leaves_the_others(wire: ScriptedModel) -> None:
    wire.enqueue("a", Reply(status=400), "c")
    p = provider(wire)
    reply = await p.complete(MESSAGES, n=3)
    await p.aclose()
    assert sorted(reply.answers) == ["a", "c"]


async def test_ollama_http_error_says_what_to_do(ollama: OllamaModel) -> None:
    ollama.enqueue(
        Reply(status=404, body='{"error": "model \\"m\\" not found, try pulling it first"}')
    )
    p = provider(ollama)
    with pytest.raises(ModelError) as err:
        await p.complete(MESSAGES)
    await p.aclose()
    text = str(err.value)
    assert "HTTP 404" in text and 'model "m" not found' in text and ollama.base_url in text
    assert "ollama pull m" in text


async def test_anthropic_http_error_names_the_error_type_and_never_the_key(
    anthropic: AnthropicModel,
) -> None:
    body = '{"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key sk-ant-SECRET"}}'
    anthropic.enqueue(Reply(status=401, body=body))
    p = provider(anthropic, "sk-ant-SECRET")
    with pytest.raises(ModelError) as err:
        await p.complete(MESSAGES)
    await p.aclose()
    text = str(err.value)
    assert "HTTP 401: authentication_error: invalid x-api-key ***" in text
    assert "OCAML_AI_API_KEY" in text and "sk-ant-SECRET" not in text
    assert anthropic.base_url in text and len(anthropic.requests) == 1


async def test_an_error_mid_stream_is_an_error(wire: ScriptedModel) -> None:
    """Ollama sends {"error": ...} mid-stream; Anthropic an `error` event."""
    wire.enqueue(
        WireReply(
            answers="x" * 40,
            chunk_size=5,
            error_after=2,
            error_message="CUDA out of memory",
            error_type="invalid_request_error",
        )
    )
    p = provider(wire)
    with pytest.raises(ModelError, match=r"sent an error mid-stream: .*CUDA out of memory"):
        await p.complete(MESSAGES)
    await p.aclose()
    assert len(wire.requests) == 1


ERROR_BODIES = {
    "ollama": '{"error": "CUDA out of memory"}',
    "anthropic": '{"type": "error", "error": {"type": "api_error", "message": "CUDA out of memory"}}',
}


async def test_an_error_object_in_a_whole_answer_is_an_error(wire: ScriptedModel) -> None:
    wire.enqueue(Reply(body=ERROR_BODIES[kind_of(wire)]))
    p = provider(wire, stream=False)
    with pytest.raises(ModelError, match=r"answered an error: .*CUDA out of memory"):
        await p.complete(MESSAGES)
    await p.aclose()


async def test_a_cut_stream_is_an_error_and_not_repeated(wire: ScriptedModel) -> None:
    wire.enqueue(WireReply(answers="y" * 100, chunk_size=5, cut_after=3), "never asked")
    p = provider(wire)
    with pytest.raises(ModelError, match="closed the stream before the answer was complete"):
        await p.complete(MESSAGES)
    await p.aclose()
    assert len(wire.requests) == 1  # text had arrived: a retry would show it twice


@pytest.mark.parametrize("stream", [True, False])
async def test_malformed_answers(wire: ScriptedModel, stream: bool) -> None:
    wire.enqueue(Reply(body="{not json"))
    p = provider(wire, stream=stream)
    with pytest.raises(ModelError, match="malformed"):
        await p.complete(MESSAGES)
    await p.aclose()


async def test_cancelling_closes_the_stream_at_once(wire: ScriptedModel) -> None:
    wire.enqueue(WireReply(answers="z" * 2000, chunk_size=2, chunk_delay=0.05))
    deltas: list[str] = []
    p = provider(wire)
    task = asyncio.ensure_future(p.complete(MESSAGES, on_delta=lambda i, t: deltas.append(t)))
    while not deltas:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wire.wait_for_disconnect(1)
    await p.aclose()


async def test_the_deadline_ends_a_hang(wire: ScriptedModel) -> None:
    wire.enqueue(Reply(answers="late", hang=30))
    p = provider(wire, deadline=0.5)
    with pytest.raises(ModelError, match=r"did not finish within 0\.5 s \(model\.deadline\)"):
        await asyncio.wait_for(p.complete(MESSAGES), 10)
    await p.aclose()


async def test_list_models(wire: ScriptedModel) -> None:
    wire.models = ["qwen2.5-coder:7b", "llama3"]
    p = provider(wire, "k")
    assert await p.list_models() == ["qwen2.5-coder:7b", "llama3"]
    await p.aclose()
    assert wire.paths[0].startswith(
        {"ollama": "/api/tags", "anthropic": "/v1/models"}[kind_of(wire)]
    )


async def test_list_models_openai(model: ScriptedModel) -> None:
    model.models = ["gpt-x"]
    p = OpenAICompatible(ModelSettings(base_url=model.base_url), "k")
    assert await p.list_models() == ["gpt-x"]
    assert model.paths == ["/v1/models"] and model.headers[0]["authorization"] == "Bearer k"
    await p.aclose()


async def test_list_models_failure_is_one_clear_error(wire: ScriptedModel) -> None:
    wire.enqueue(Reply(status=403, body='{"error": "forbidden"}'))
    p = provider(wire, "k-secret")
    with pytest.raises(ModelError, match="HTTP 403") as err:
        await p.list_models()
    await p.aclose()
    assert wire.base_url in str(err.value) and "API key" in str(err.value)
