"""Bounded retries with backoff for model calls, within the call's deadline.

A failure worth another try (HTTP 429, a 5xx, no connection, a stream that
ended before any text) is a `Retryable`. Retries wait exponentially longer with
jitter, or as long as the server's `Retry-After` asks (capped). An attempt that
already handed text on is never repeated: the caller would see that text twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from .base import ModelError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Statuses that say "later", not "never": rate limits, server trouble, overload (529).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 529})


class Retryable(ModelError):
    """A failure another attempt may not meet; `summary` names it in a few words."""

    def __init__(self, message: str, summary: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.summary = summary
        self.retry_after = retry_after


@dataclass
class Progress:
    """What one attempt got done: once text arrived, that attempt is not repeated."""

    delivered: bool = False


@dataclass(frozen=True)
class Backoff:
    """How long to wait before retry number `attempt` (0-based)."""

    #: Seconds before the first retry (each later one doubles it), with jitter.
    base: float = 0.5
    #: Longest wait without a Retry-After.
    cap: float = 8.0
    #: Longest wait a server's Retry-After may ask for.
    retry_after_cap: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap)
        # "equal jitter": at least half the exponential step, so waits still grow
        return min(self.cap, self.base * 2.0**attempt) * random.uniform(0.5, 1.0)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (seconds or an HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _gave_up(first: Retryable, last: Retryable, attempts: int) -> ModelError:
    """One message for a call that failed every time: the first failure, and the last."""
    if attempts <= 1:
        return ModelError(str(last))
    tail = "" if last.summary == first.summary else f"; the last: {last.summary}"
    return ModelError(f"{first} (Tried {attempts} times{tail}.)")


async def with_retries(
    attempt: Callable[[Progress], Awaitable[T]],
    retries: int,
    deadline_at: float,
    backoff: Backoff,
) -> T:
    """Run `attempt` until it succeeds, at most `retries` more times after a `Retryable`.

    `deadline_at` is a `time.monotonic()` time: a wait that would end past it is not
    started (the caller's own timeout still bounds the attempts themselves).
    Other errors, and cancellation, pass through at once.
    """
    first: Retryable | None = None
    for tried in range(retries + 1):
        progress = Progress()
        try:
            return await attempt(progress)
        except Retryable as err:
            first = first or err
            if progress.delivered:  # its text is already out: report, never repeat
                raise ModelError(str(err)) from None
            if tried >= retries:
                raise _gave_up(first, err, tried + 1) from None
            delay = backoff.delay(tried, err.retry_after)
            if time.monotonic() + delay >= deadline_at:
                raise ModelError(
                    f"{err} (Not retried: waiting {delay:.3g} s would pass the deadline, "
                    "model.deadline.)"
                ) from None
            log.info("%s Retrying in %.2f s (retry %d of %d).", err, delay, tried + 1, retries)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
