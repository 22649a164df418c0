"""Recorded model answers: written during a run, replayed without a model.

A replayed run evaluates a change to the parser, the applier or the verifier on
exactly the answers a model once gave, so two runs differ only by that change.
Answers are keyed by (task, arm, sample, round): `round` counts the model calls of
one attempt (0 the first answer, k the k-th repair round; the harness asks one
candidate per call, so there is one call per round). The provider is called
without the task, so each attempt gets its own provider bound to its key.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..providers.base import ChatMessage, DeltaCallback, ModelError, ModelReply, Provider

#: (task id, arm name, sample, round)
AnswerKey = tuple[str, str, int, int]


def answer_key(record: Mapping[str, Any]) -> AnswerKey:
    return (str(record["task"]), str(record["arm"]), int(record["sample"]), int(record["round"]))


def load_answers(path: Path) -> dict[AnswerKey, dict[str, Any]]:
    """The recorded answers by key (a later line wins: a rerun of an attempt that was cut
    short records its calls again). Lines that are not whole records are skipped: the
    last one may have been cut by a kill."""
    out: dict[AnswerKey, dict[str, Any]] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                record = json.loads(line)
                key = answer_key(record)
            except (ValueError, KeyError, TypeError):
                continue
            if isinstance(record.get("answers"), list):
                out[key] = record
    return out


class ReplayProvider:
    """Answers one attempt's model calls from recorded answers (call k = round k).

    A key that was never recorded is a `ModelError` naming it, so the attempt fails
    the way a model failure would, and says why.
    """

    def __init__(
        self,
        answers: Mapping[AnswerKey, Mapping[str, Any]] | Path,
        task: str,
        arm: str,
        sample: int,
    ) -> None:
        self._answers = load_answers(answers) if isinstance(answers, Path) else answers
        self.task, self.arm, self.sample = task, arm, sample
        self.calls = 0
        self._model = "replay"

    @property
    def endpoint(self) -> str:
        return "replay"

    @property
    def model(self) -> str:
        return self._model

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        n: int = 1,
        on_delta: DeltaCallback | None = None,
    ) -> ModelReply:
        key = (self.task, self.arm, self.sample, self.calls)
        self.calls += 1
        found = self._answers.get(key)
        if found is None:
            task, arm, sample, round_ = key
            raise ModelError(
                f"replay: no recorded answer for task {task!r}, arm {arm!r}, "
                f"sample {sample}, round {round_}"
            )
        answers = tuple(str(a) for a in found["answers"])[: max(1, n)]
        self._model = str(found.get("model") or "replay")
        if on_delta is not None:
            for i, text in enumerate(answers):
                on_delta(i, text)
        return ModelReply(
            answers=answers,
            model=self._model,
            prompt_tokens=found.get("prompt_tokens"),
            completion_tokens=found.get("completion_tokens"),
            first_token_ms=None,
            total_ms=0.0,
        )


@dataclass
class CallLog:
    """Wraps one attempt's provider: times every model call (first answers and repairs
    alike, which `GenerateResult.timings` does not add up) and keeps what it answered."""

    inner: Provider
    calls: list[dict[str, Any]] = field(default_factory=list)
    ms: float = 0.0

    @property
    def endpoint(self) -> str:
        return self.inner.endpoint

    @property
    def model(self) -> str:
        return self.inner.model

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        n: int = 1,
        on_delta: DeltaCallback | None = None,
    ) -> ModelReply:
        round_ = len(self.calls)
        self.calls.append({})  # the slot keeps rounds in call order even if calls overlap
        started = time.perf_counter()
        try:
            reply = await self.inner.complete(messages, n, on_delta)
        finally:
            self.ms += (time.perf_counter() - started) * 1000
        self.calls[round_] = {
            "round": round_,
            "answers": list(reply.answers),
            "model": reply.model,
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
        }
        return reply

    def records(self, task: str, arm: str, sample: int) -> list[dict[str, Any]]:
        """The answered calls as answer-file lines."""
        return [{"task": task, "arm": arm, "sample": sample, **call} for call in self.calls if call]


def append_lines(fh: IO[str], records: Sequence[Mapping[str, Any]]) -> None:
    """Append JSON lines and make them durable (flush + fsync): a kill right after
    loses nothing that was written."""
    if not records:
        return
    for record in records:
        fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    fh.flush()
    os.fsync(fh.fileno())
