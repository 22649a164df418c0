"""The one interface every model backend implements."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class ModelReply:
    """The model's answers to one prompt, with what it cost.

    `answers` holds one text per candidate asked for (fewer if the endpoint
    gave fewer). Times are milliseconds from the start of the call.
    """

    answers: tuple[str, ...]
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    first_token_ms: float | None = None
    total_ms: float = 0.0


class ModelError(Exception):
    """A model call that failed; `str(err)` is the one message shown to the user.

    The message names the endpoint and never contains the API key.
    """


#: Called with (candidate index, text delta) as a streamed answer arrives.
DeltaCallback = Callable[[int, str], None]


class Provider(Protocol):
    """A model backend: one prompt in, `n` answers out, cancellable.

    Cancelling the awaiting task closes the HTTP stream at once.
    """

    @property
    def endpoint(self) -> str: ...

    @property
    def model(self) -> str: ...

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        n: int = 1,
        on_delta: DeltaCallback | None = None,
    ) -> ModelReply: ...
