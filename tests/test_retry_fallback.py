"""Retries with backoff (429, 5xx, Retry-After, the deadline), the fallback model,
and the API key kept out of every log line, against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from ocaml_ai_ls.config import ModelSettings, Settings
from ocaml_ai_ls.providers import (
    BACKENDS,
    Backoff,
    ChatMessage,
    Fallback,
    HttpProvider,
    ModelError,
    OpenAICompatible,
    make_provider,
    provider_for,
    provider_key,
)
from ocaml_ai_ls.providers.retry import parse_retry_after
from tests.model_server import Reply, ScriptedModel
from tests.wire_servers import AnthropicModel, OllamaModel, WireReply

MESSAGES = [ChatMessage("system", "s"), ChatMessage("user", "u")]
FAST = Backoff(base=0.01, cap=0.02)


def kind_of(server: ScriptedModel) -> str:
    if isinstance(server, OllamaModel):
        return "ollama"
    return "anthropic" if isinstance(server, AnthropicModel) else "openai"


def settings_for(server: ScriptedModel, **changes: object) -> ModelSettings:
    settings = ModelSettings(provider=kind_of(server), base_url=server.base_url, model="m")
    return replace(settings, **changes)  # type: ignore[arg-type]


def provider(server: ScriptedModel, key: str | None = None, **changes: object) -> HttpProvider:
    settings = settings_for(server, **changes)
    return BACKENDS[settings.provider](settings, key, backoff=FAST)


@pytest.fixture(params=["openai", "ollama", "anthropic"])
def any_wire(request: pytest.FixtureRequest) -> Iterator[ScriptedModel]:
    kinds = {"openai": ScriptedModel, "ollama": OllamaModel, "anthropic": AnthropicModel}
    server = kinds[request.param]().start()
    try:
        yield server
    finally:
        server.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: nothing listens there


# -- the policy ------------------------------------------------------------------


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("1") == 1.0 and parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=10), usegmt=True), now) == 10
    assert parse_retry_after(format_datetime(now - timedelta(seconds=10), usegmt=True), now) == 0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_backoff_grows_with_jitter_and_honours_retry_after_up_to_a_cap() -> None:
    backoff = Backoff(base=0.5, cap=8.0, retry_after_cap=30.0)
    for attempt, step in enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 8.0]):
        waits = {backoff.delay(attempt) for _ in range(20)}
        assert all(step / 2 <= w <= step for w in waits) and len(waits) > 1
    assert backoff.delay(0, retry_after=3.0) == 3.0
    assert backoff.delay(5, retry_after=120.0) == 30.0


# -- retries ---------------------------------------------------------------------


async def test_429_with_retry_after_waits_as_asked_then_succeeds(model: ScriptedModel) -> None:
    model.enqueue(Reply(status=429, headers={"Retry-After": "1"}), "after the wait")
    p = provider(model)
    reply = await p.complete(MESSAGES)
    await p.aclose()
    assert reply.answers == ("after the wait",) and len(model.requests) == 2
    assert model.times[1] - model.times[0] >= 0.95


async def test_5xx_then_success(any_wire: ScriptedModel) -> None:
    any_wire.enqueue(Reply(status=503), Reply(status=502), "third time lucky")
    p = provider(any_wire)
    reply = await p.complete(MESSAGES)
    await p.aclose()
    assert reply.answers == ("third time lucky",) and len(any_wire.requests) == 3


async def test_retries_exhausted_is_one_clear_error_naming_the_status(
    any_wire: ScriptedModel,
) -> None:
    any_wire.set_default(Reply(status=503, body='{"error": "overloaded"}'))
    p = provider(any_wire, retries=2)
    with pytest.raises(ModelError) as err:
        await p.complete(MESSAGES)
    await p.aclose()
    text = str(err.value)
    assert "HTTP 503: overloaded" in text and "Tried 3 times" in text
    assert any_wire.base_url in text and len(any_wire.requests) == 3


async def test_the_first_and_last_failures_are_both_named(model: ScriptedModel) -> None:
    model.enqueue(Reply(status=500, body='{"error": {"message": "CUDA out of memory"}}'))
    model.set_default(Reply(status=529, body="busy"))
    p = provider(model, retries=1)
    with pytest.raises(ModelError, match=r"CUDA out of memory \(Tried 2 times; the last: HTTP 529"):
        await p.complete(MESSAGES)
    await p.aclose()


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_not_retried(any_wire: ScriptedModel, status: int) -> None:
    any_wire.enqueue(Reply(status=status), "never asked")
    p = provider(any_wire)
    with pytest.raises(ModelError, match=f"HTTP {status}"):
        await p.complete(MESSAGES)
    await p.aclose()
    assert len(any_wire.requests) == 1


async def test_no_retries_when_retries_is_0(model: ScriptedModel) -> None:
    model.enqueue(Reply(status=503), "never asked")
    p = provider(model, retries=0)
    with pytest.raises(ModelError, match="HTTP 503") as err:
        await p.complete(MESSAGES)
    await p.aclose()
    assert len(model.requests) == 1 and "Tried" not in str(err.value)


async def test_a_retry_after_past_the_deadline_fails_at_once(model: ScriptedModel) -> None:
    model.enqueue(Reply(status=429, headers={"Retry-After": "20"}), "never asked")
    p = provider(model, deadline=5.0)
    started = time.monotonic()
    with pytest.raises(ModelError, match=r"HTTP 429.*would pass the deadline"):
        await p.complete(MESSAGES)
    await p.aclose()
    assert time.monotonic() - started < 2 and len(model.requests) == 1


async def test_no_connection_is_retried_then_explained() -> None:
    settings = ModelSettings(base_url=f"http://127.0.0.1:{closed_port()}/v1", retries=1)
    p = OpenAICompatible(settings, backoff=FAST)
    with pytest.raises(ModelError, match=r"Cannot reach .* \(Tried 2 times\.\)"):
        await p.complete(MESSAGES)
    await p.aclose()


async def test_an_overloaded_event_before_any_text_is_retried(anthropic: AnthropicModel) -> None:
    anthropic.enqueue(WireReply(answers="x", error_after=0, error_type="overloaded_error"), "ok")
    p = provider(anthropic)
    reply = await p.complete(MESSAGES)
    await p.aclose()
    assert reply.answers == ("ok",) and len(anthropic.requests) == 2


async def test_an_overloaded_event_after_text_is_not_retried(anthropic: AnthropicModel) -> None:
    anthropic.enqueue(
        WireReply(answers="x" * 20, chunk_size=4, error_after=2, error_message="Overloaded"), "ok"
    )
    deltas: list[str] = []
    p = provider(anthropic)
    with pytest.raises(ModelError, match="overloaded_error: Overloaded"):
        await p.complete(MESSAGES, on_delta=lambda i, t: deltas.append(t))
    await p.aclose()
    assert len(anthropic.requests) == 1 and "".join(deltas) == "x" * 8


async def test_a_stream_cut_before_any_text_is_retried(ollama: OllamaModel) -> None:
    ollama.enqueue(WireReply(answers="never seen", cut_after=0), "whole")
    p = provider(ollama)
    assert (await p.complete(MESSAGES)).answers == ("whole",)
    await p.aclose()
    assert len(ollama.requests) == 2


async def test_each_of_n_requests_retries_on_its_own(ollama: OllamaModel) -> None:
    ollama.enqueue("a", Reply(status=503), "b")
    p = provider(ollama)
    reply = await p.complete(MESSAGES, n=2)
    await p.aclose()
    assert sorted(reply.answers) == ["a", "b"] and len(ollama.requests) == 3


# -- the fallback ------------------------------------------------------------------


async def test_5xx_on_the_primary_then_the_fallback_answers(
    model: ScriptedModel, anthropic: AnthropicModel
) -> None:
    model.set_default(Reply(status=503, body="overloaded"))
    anthropic.enqueue(WireReply(answers="from the fallback", model="claude-x"))
    p = make_provider(
        settings_for(model, retries=1), "k1", settings_for(anthropic, model="claude-x"), "k2"
    )
    assert isinstance(p, Fallback) and (p.provider, p.model) == ("openai", "m")
    reply = await p.complete(MESSAGES)
    await p.aclose()
    assert reply.answers == ("from the fallback",) and reply.model == "claude-x"
    assert len(model.requests) == 2 and len(anthropic.requests) == 1
    assert model.headers[0]["authorization"] == "Bearer k1"
    assert anthropic.headers[0]["x-api-key"] == "k2"


async def test_the_fallback_is_not_asked_when_the_primary_answers(
    model: ScriptedModel, ollama: OllamaModel
) -> None:
    model.enqueue(Reply(answers="primary", model="served-primary"))
    p = make_provider(settings_for(model), None, settings_for(ollama), None)
    reply = await p.complete(MESSAGES)
    await p.aclose()
    assert reply.model == "served-primary" and ollama.requests == []


async def test_both_failing_names_both(model: ScriptedModel, ollama: OllamaModel) -> None:
    model.enqueue(Reply(status=500, body='{"error": {"message": "primary broke"}}'))
    ollama.enqueue(Reply(status=404, body='{"error": "model not found"}'))
    p = make_provider(
        settings_for(model, retries=0), None, settings_for(ollama, model="qwen"), None
    )
    with pytest.raises(ModelError) as err:
        await p.complete(MESSAGES)
    await p.aclose()
    text = str(err.value)
    assert text.startswith("Both models failed.")
    assert "m (openai)" in text and "HTTP 500: primary broke" in text and model.base_url in text
    assert "qwen (ollama)" in text and "HTTP 404: model not found" in text
    assert ollama.base_url in text


async def test_cancelling_while_the_fallback_streams_closes_its_stream(
    model: ScriptedModel, anthropic: AnthropicModel
) -> None:
    model.enqueue(Reply(status=400))
    anthropic.enqueue(WireReply(answers="z" * 2000, chunk_size=2, chunk_delay=0.05))
    deltas: list[str] = []
    p = make_provider(settings_for(model), None, settings_for(anthropic), None)
    task = asyncio.ensure_future(p.complete(MESSAGES, on_delta=lambda i, t: deltas.append(t)))
    while not deltas:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert anthropic.wait_for_disconnect(1)
    await p.aclose()


def test_provider_for_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCAML_AI_API_KEY", "main-key")
    monkeypatch.setenv("FALLBACK_KEY", "other-key")
    plain = Settings(model=ModelSettings(provider="ollama"))
    p = provider_for(plain)
    assert p.provider == "ollama" and not isinstance(p, Fallback)
    fallback = ModelSettings(provider="anthropic", api_key_env="FALLBACK_KEY")
    both = replace(plain, fallback=fallback)
    q = provider_for(both)
    assert isinstance(q, Fallback) and q.fallback.provider == "anthropic"
    assert provider_key(plain) != provider_key(both)
    assert provider_key(both)[-1] == "other-key"
    asyncio.run(p.aclose())
    asyncio.run(q.aclose())


# -- secrets -------------------------------------------------------------------------

SECRET = "sk-SENTINEL-0123456789"


async def test_the_api_key_is_in_no_log_line_and_no_message(
    caplog: pytest.LogCaptureFixture,
    model: ScriptedModel,
    ollama: OllamaModel,
    anthropic: AnthropicModel,
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f'{{"error": {{"message": "bad key {SECRET}"}}}}'
    errors: list[str] = []
    for server in (model, ollama, anthropic):
        # a retried 503 that echoes the key, then an answer
        server.enqueue(Reply(status=503, body=echo), Reply(answers="ok", chunk_size=1))
        p = provider(server, SECRET)
        assert (await p.complete(MESSAGES)).answers == ("ok",)
        # a refused key, echoed back; a failed model list
        server.enqueue(Reply(status=401, body=echo), Reply(status=403, body=echo))
        for call in (p.complete(MESSAGES), p.list_models()):
            with pytest.raises(ModelError) as err:
                await call
            errors.append(str(err.value))
        await p.aclose()
    sent = [h.get("authorization", "") + h.get("x-api-key", "") for h in model.headers]
    sent += [h.get("authorization", "") for h in ollama.headers]
    sent += [h.get("x-api-key", "") for h in anthropic.headers]
    assert all(SECRET in h for h in sent)  # the key did go where it belongs
    # a fallback pair that both fail, and an endpoint that does not answer
    model.enqueue(Reply(status=500, body=echo))
    anthropic.enqueue(Reply(status=500, body=echo))
    pair = make_provider(
        settings_for(model, retries=0), SECRET, settings_for(anthropic, retries=0), SECRET
    )
    with pytest.raises(ModelError) as err:
        await pair.complete(MESSAGES)
    errors.append(str(err.value))
    await pair.aclose()
    gone = OpenAICompatible(
        ModelSettings(base_url=f"http://127.0.0.1:{closed_port()}/v1", retries=1),
        SECRET,
        backoff=FAST,
    )
    with pytest.raises(ModelError) as err:
        await gone.complete(MESSAGES)
    errors.append(str(err.value))
    await gone.aclose()
    assert len(errors) == 8 and all("***" in e for e in errors[:-1])
    assert caplog.records and any(r.levelno == logging.DEBUG for r in caplog.records)
    for record in caplog.records:
        assert SECRET not in record.getMessage(), record.getMessage()
    assert SECRET not in caplog.text
    for text in errors:
        assert SECRET not in text
