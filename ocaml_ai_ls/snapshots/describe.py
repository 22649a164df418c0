"""The instruction of a mined example, written by the configured model in two steps.

A small model asked straight for "the instruction behind this diff" tends to
paraphrase the diff line by line. So it is asked twice: first for a detailed
description of what the change does and why (`DESCRIBE_*`), then, from that
description alone, for what a person would type in their editor to ask for it
(`CONDENSE_*`): at most `MAX_WORDS` words.

The second answer is cleaned by `clean_instruction`: its first non-empty line,
a leading label (`Instruction:`), bullet or numbering taken off, surrounding
quotes and backticks taken off, whitespace collapsed, one trailing period (not
an ellipsis) dropped, and cut to `MAX_WORDS` words at a word boundary. An
answer with nothing left is a failure.

Any failure (the model is unreachable, errs, or says nothing usable) gives no
instruction (None), never an exception: mining goes on without one. After
`MAX_FAILURES_IN_A_ROW` failed examples in a row the model is not asked again
in this run, so an endpoint that is down costs a few retries, not one per
example.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from ..providers.base import ChatMessage, ModelError, Provider

log = logging.getLogger(__name__)

#: Words an instruction may have at most (longer answers are cut).
MAX_WORDS = 12
#: Failed examples in a row after which the model is not asked again.
MAX_FAILURES_IN_A_ROW = 3
#: Compiler errors shown with a repair example's diff, at most.
MAX_ERRORS_SHOWN = 5

DESCRIBE_SYSTEM = """\
You are an expert OCaml programmer reviewing a change to a dune project. \
Describe the change precisely: which files, functions, types and modules it \
touches, what it does to each, and what it is for. Plain prose, no code blocks."""

DESCRIBE_USER = """\
Here is a change to an OCaml project as a unified diff:

```diff
{diff}
```
{errors}
Describe this change in detail: what it changes, where, and why."""

DESCRIBE_ERRORS = """
Before the change, the project did not compile; the compiler said:
{errors}
"""

CONDENSE_SYSTEM = """\
You turn descriptions of code changes into the short instruction a programmer \
types in their editor to ask an assistant for that change, such as \
"make sum tail recursive" or "fix the type error in area". Answer with the \
instruction only: one line, imperative, no quotes, at most {max_words} words."""

CONDENSE_USER = """\
A change was described like this:

{description}

Write the instruction a programmer would type in their editor to ask for this \
change: one line, at most {max_words} words."""

_LABEL = re.compile(r"^(?:instruction|answer|command|request)\s*:\s*", re.IGNORECASE)
_BULLET = re.compile(r"^(?:[-*•>]+|\d+[.)])\s+")
_QUOTES = "\"'`“”‘’«»"


def describe_messages(diff: str, errors: Sequence[str] = ()) -> list[ChatMessage]:
    """The first request: the diff (and a repair's errors), asking for a detailed description."""
    shown = "\n".join(f"- {e}" for e in errors[:MAX_ERRORS_SHOWN])
    extra = DESCRIBE_ERRORS.format(errors=shown) if shown else ""
    user = DESCRIBE_USER.format(diff=diff.rstrip("\n"), errors=extra)
    return [ChatMessage("system", DESCRIBE_SYSTEM), ChatMessage("user", user)]


def condense_messages(description: str) -> list[ChatMessage]:
    """The second request: the description alone, asking for an editor-sized instruction."""
    system = CONDENSE_SYSTEM.format(max_words=MAX_WORDS)
    user = CONDENSE_USER.format(description=description.strip(), max_words=MAX_WORDS)
    return [ChatMessage("system", system), ChatMessage("user", user)]


def clean_instruction(answer: str, max_words: int = MAX_WORDS) -> str:
    """One line of at most `max_words` words from a model's answer ("" if none is left)."""
    line = next((s.strip() for s in answer.splitlines() if s.strip()), "")
    if line.startswith("```"):  # a fenced answer: the first line inside the fence
        inside = [s.strip() for s in answer.splitlines()[1:] if s.strip()]
        line = next((s for s in inside if not s.startswith("```")), "")
    line = _BULLET.sub("", line).strip(_QUOTES).strip()
    line = _LABEL.sub("", line).strip(_QUOTES).strip()
    words = line.split()[:max_words]
    text = " ".join(words)
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1].rstrip()
    return text.strip(_QUOTES).strip()


class Describer:
    """Writes instructions with one provider, giving up after repeated failures."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.failures_in_a_row = 0
        #: Examples for which the model gave no instruction.
        self.failed = 0

    @property
    def gave_up(self) -> bool:
        return self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW

    async def instruction(self, diff: str, errors: Sequence[str] = ()) -> str | None:
        """The instruction for a change, or None when the model gave none."""
        if self.gave_up:
            self.failed += 1
            return None
        try:
            described = await self.provider.complete(describe_messages(diff, errors))
            description = described.answers[0].strip() if described.answers else ""
            if not description:
                raise ModelError("the model gave an empty description")
            condensed = await self.provider.complete(condense_messages(description))
            text = clean_instruction(condensed.answers[0] if condensed.answers else "")
            if not text:
                raise ModelError("the model gave an empty instruction")
        except ModelError as exc:
            self.failures_in_a_row += 1
            self.failed += 1
            log.warning("mine: no instruction: %s", exc)
            if self.failures_in_a_row == MAX_FAILURES_IN_A_ROW:
                log.warning(
                    "mine: %d failures in a row; not asking the model again", self.failures_in_a_row
                )
            return None
        self.failures_in_a_row = 0
        return text
