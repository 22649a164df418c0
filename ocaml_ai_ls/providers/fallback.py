"""A second model for when the first one fails: a local model behind a hosted
one, or the other way round, so one outage does not stop the user.

The fallback is asked only after the primary has failed for good (its own
retries included); the reply's `model` says which one answered.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .base import ChatMessage, DeltaCallback, ModelError, ModelReply
from .http import ManagedProvider

log = logging.getLogger(__name__)


class Fallback:
    """`primary`, then `fallback` if the primary raises a ModelError.

    A primary that failed mid-stream may have passed some text to `on_delta`
    already; the fallback's answer then streams from its start (the deltas are
    for showing progress; the reply holds only the fallback's answers).
    Cancelling the call cancels whichever request is running, closing its stream.
    """

    def __init__(self, primary: ManagedProvider, fallback: ManagedProvider) -> None:
        self.primary = primary
        self.fallback = fallback

    @property
    def provider(self) -> str:
        return self.primary.provider

    @property
    def endpoint(self) -> str:
        return self.primary.endpoint

    @property
    def model(self) -> str:
        return self.primary.model

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        n: int = 1,
        on_delta: DeltaCallback | None = None,
    ) -> ModelReply:
        try:
            return await self.primary.complete(messages, n, on_delta)
        except ModelError as first:
            log.warning(
                "%s failed, asking the fallback model %s at %s: %s",
                self.primary.model,
                self.fallback.model,
                self.fallback.endpoint,
                first,
            )
            try:
                return await self.fallback.complete(messages, n, on_delta)
            except ModelError as second:
                raise ModelError(
                    f"Both models failed. {self.primary.model} ({self.primary.provider}): "
                    f"{first} Fallback {self.fallback.model} ({self.fallback.provider}): "
                    f"{second}"
                ) from None

    async def list_models(self) -> list[str]:
        """The primary's models (`doctor` asks each provider on its own)."""
        return await self.primary.list_models()

    async def aclose(self) -> None:
        try:
            await self.primary.aclose()
        finally:
            await self.fallback.aclose()
