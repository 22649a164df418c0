"""Model backends behind one interface."""

from __future__ import annotations

from ..config import Settings
from .base import ChatMessage, DeltaCallback, ModelError, ModelReply, Provider
from .openai import OpenAICompatible


def make_provider(settings: Settings) -> OpenAICompatible:
    """The provider for these settings, with the key from the environment."""
    return OpenAICompatible(settings.model, settings.api_key())


__all__ = [
    "ChatMessage",
    "DeltaCallback",
    "ModelError",
    "ModelReply",
    "OpenAICompatible",
    "Provider",
    "make_provider",
]
