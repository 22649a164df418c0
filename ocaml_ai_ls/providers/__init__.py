"""Model backends behind one interface."""

from __future__ import annotations

from typing import Any

from ..config import ModelSettings, Settings, api_key
from .anthropic import Anthropic
from .base import ChatMessage, DeltaCallback, ModelError, ModelReply, Provider
from .fallback import Fallback
from .http import HttpProvider, ManagedProvider
from .ollama import Ollama
from .openai import OpenAICompatible
from .retry import Backoff

#: The backend class for each wire format (`model.provider`).
BACKENDS: dict[str, type[HttpProvider]] = {
    "openai": OpenAICompatible,
    "ollama": Ollama,
    "anthropic": Anthropic,
}


def make_provider(
    model: ModelSettings,
    key: str | None,
    fallback: ModelSettings | None = None,
    fallback_key: str | None = None,
) -> ManagedProvider:
    """The backend for `model.provider`, behind a `Fallback` when a fallback is set."""
    primary = BACKENDS[model.provider](model, key)
    if fallback is None:
        return primary
    return Fallback(primary, BACKENDS[fallback.provider](fallback, fallback_key))


def provider_for(settings: Settings) -> ManagedProvider:
    """The provider for `[model]` and `[fallback]`, keys from the environment."""
    fallback_key = api_key(settings.fallback) if settings.fallback is not None else None
    return make_provider(settings.model, api_key(settings.model), settings.fallback, fallback_key)


def provider_key(settings: Settings) -> tuple[Any, ...]:
    """What `provider_for` depends on: a provider is rebuilt when this changes."""
    fallback_key = api_key(settings.fallback) if settings.fallback is not None else None
    return (settings.model, api_key(settings.model), settings.fallback, fallback_key)


__all__ = [
    "BACKENDS",
    "Anthropic",
    "Backoff",
    "ChatMessage",
    "DeltaCallback",
    "Fallback",
    "HttpProvider",
    "ManagedProvider",
    "ModelError",
    "ModelReply",
    "Ollama",
    "OpenAICompatible",
    "Provider",
    "make_provider",
    "provider_for",
    "provider_key",
]
