"""One generation: context → prompt → model → parse → apply → verify → edits.

Plain functions over plain data: the server only wires this to LSP messages
(progress, cancellation, `workspace/applyEdit`), and tests can run it alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .config import Settings
from .context.index import WorkspaceIndex
from .context.model import Context
from .context.slicer import build_context
from .edits.apply import apply_file_edit
from .edits.model import FileApplyResult, ParseResult
from .edits.parse import parse_answer
from .edits.workspace_edit import (
    EditUnsupported,
    FileChange,
    build_workspace_edit,
    unified_diff,
)
from .instructions import removal_span
from .positions import Encoding, LineIndex, decode, encode
from .prompt import apply_feedback, build_messages, compile_feedback, repair_messages
from .providers.base import ChatMessage, ModelError, Provider
from .request import Candidate, GenerateRequest, GenerateResult, Rejected
from .uris import path_to_uri, uri_to_path
from .verify.result import (
    OK,
    RANKED,
    REJECTED,
    UNVERIFIED,
    CheckError,
    Verification,
)
from .verify.syntax import check_syntax
from .workspace import FileText, PathRefused, Workspace

log = logging.getLogger(__name__)

#: Progress stages, in order; the server reports one message per stage (and
#: "type-check", "repair N" when they happen).
STAGES = ("context", "model", "verify")


@dataclass(frozen=True)
class EditorSupport:
    """What the editor can apply, from its capabilities."""

    encoding: Encoding = Encoding.UTF16
    document_changes: bool = True
    create_files: bool = True


@dataclass(frozen=True)
class Prepared:
    """The request's file before the model: the text it was shown, the slice."""

    current: FileText
    base_text: str
    context: Context


class GenerationError(Exception):
    """The request cannot be served at all (no such file, not OCaml, ...)."""


def prepare(
    req: GenerateRequest,
    ws: Workspace,
    settings: Settings,
    enc: Encoding,
    index: WorkspaceIndex | None = None,
) -> Prepared:
    """Read the file, take out the instruction comment, and slice the context (from the
    root's `index`; without one, files are read as the slice needs them)."""
    path = uri_to_path(req.uri)
    if path is None:
        raise GenerationError(f"{req.uri} is not a file")
    current = ws.read(path)
    if current is None:
        raise GenerationError(f"cannot read {req.uri} (missing, not UTF-8, or too large)")
    data = encode(current.text)
    at = LineIndex(data, enc)
    selection: tuple[int, int] | None = None
    if req.range is not None:
        selection = (at.offset(req.range.start), at.offset(req.range.end))
    if req.comment is not None:
        start, end = removal_span(data, at.offset(req.comment.start), at.offset(req.comment.end))
        data = data[:start] + data[end:]
        if selection is not None:
            removed = end - start

            def shift(offset: int) -> int:
                return offset if offset <= start else max(start, offset - removed)

            selection = (shift(selection[0]), shift(selection[1]))
    base_text = decode(data)
    c = settings.context
    context = build_context(
        ws,
        current,
        base_text,
        selection,
        instruction=req.instruction,
        budget=c.budget_tokens,
        full_file_tokens=c.full_file_tokens,
        max_callers=c.max_callers,
        index=index,
    )
    return Prepared(current, base_text, context)


def request_messages(
    req: GenerateRequest,
    ws: Workspace,
    settings: Settings,
    enc: Encoding,
    index: WorkspaceIndex | None = None,
) -> tuple[Prepared, list[ChatMessage]]:
    """What the model is sent for a request (system and user messages), and the
    prepared file they were made from; `dataset export` writes the same messages."""
    prep = prepare(req, ws, settings, enc, index)
    return prep, build_messages(prep.context, req.instruction, settings.model.strategy)


def apply_parsed(
    parsed: ParseResult,
    prep: Prepared,
    ws: Workspace,
    base: Mapping[Path, str] | None = None,
) -> tuple[list[FileChange], str | None]:
    """The file changes a parsed answer makes, or the reason it makes none.

    `base` gives the texts to apply to for some files (a repaired candidate's
    own text); the changes are still made against the current files.
    """
    if not parsed.usable:
        return [], parsed.reason
    texts: dict[Path, tuple[str | None, FileText | None]] = {}
    order: list[Path] = []
    for edit in parsed.edits:
        try:
            path = ws.resolve(edit.path, prep.current.path, prep.context.files)
        except PathRefused as exc:
            return [], f"refused: {exc}"
        if path not in texts:
            if base is not None and path in base:
                source = prep.current if path == prep.current.path else ws.read(path)
                texts[path] = (base[path], source)
            elif path == prep.current.path:
                texts[path] = (prep.base_text, prep.current)
            else:
                on_disk = ws.read(path)
                if on_disk is None and path.exists():
                    return [], f"cannot read {ws.rel(path)} (not UTF-8, or too large)"
                texts[path] = (on_disk.text if on_disk else None, on_disk)
            order.append(path)
        text, source = texts[path]
        result: FileApplyResult = apply_file_edit(text, edit)
        if result.text is None:
            failure = result.failures[0] if result.failures else None
            why = failure.reason if failure else "it did not apply"
            hint = f" ({failure.closest})" if failure and failure.closest else ""
            return [], f"{ws.rel(path)}: {why}{hint}"
        texts[path] = (result.text, source)
    for path, text in (base or {}).items():  # what the repaired candidate changed
        if path not in texts:
            source = prep.current if path == prep.current.path else ws.read(path)
            texts[path] = (text, source)
            order.append(path)
    if prep.current.path not in texts and prep.base_text != prep.current.text:
        texts[prep.current.path] = (prep.base_text, prep.current)  # the comment goes anyway
        order.append(prep.current.path)
    changes: list[FileChange] = []
    for path in order:
        new, source = texts[path]
        assert new is not None
        old = source.text if source is not None else None
        if old == new:
            continue
        changes.append(
            FileChange(
                path=path,
                rel=ws.rel(path),
                uri=source.uri if source else path_to_uri(path),
                old=old,
                new=new,
                version=source.version if source else None,
            )
        )
    if not changes:
        return [], "the answer changes nothing"
    return changes, None


def verify(
    changes: list[FileChange],
    candidate_id: str,
    model: str,
    support: EditorSupport,
    round_: int = 0,
) -> Candidate | Rejected:
    """Check the new texts parse and turn them into an edit the editor can apply."""
    verification = check_syntax([(c.rel, c.new) for c in changes])
    try:
        edit = build_workspace_edit(
            changes, support.encoding, support.document_changes, support.create_files
        )
    except EditUnsupported as exc:
        return Rejected(candidate_id, model, str(exc))
    diff = unified_diff(changes)
    return Candidate(candidate_id, model, diff, edit, verification, tuple(changes), round_)


def rank(candidates: Sequence[Candidate]) -> list[Candidate]:
    """By what the compiler said (tests pass > type-checks > parses), then the smaller
    diff (sorting is stable for ties). A candidate whose only errors are ones the
    project already had ranks with the unverified ones: the compiler could not judge
    it, and it broke nothing; among the rest, fewer new errors first."""

    def key(c: Candidate) -> tuple[int, int, int]:
        v = c.verification
        status = UNVERIFIED if v.status in REJECTED and not v.failed else v.status
        tier = RANKED.index(status) if status in RANKED else len(RANKED)
        return (tier, len(v.new_errors) if v.failed else 0, c.changed_lines)

    return sorted(candidates, key=key)


#: Checks one candidate's files (relative path → new text) with the compiler.
Checker = Callable[[Mapping[str, str | None]], Awaitable[Verification]]


async def compile_check(candidates: list[Candidate], checker: Checker) -> list[Candidate]:
    """Type-check (and test) the candidates that parse, concurrently; the rest as they are."""

    async def one(c: Candidate) -> Candidate:
        if c.verification.status != OK:
            return c
        try:
            found = await checker({ch.rel: ch.new for ch in c.changes})
        except Exception as exc:  # a broken shadow must not lose the candidate
            log.exception("checking candidate %s failed", c.id)
            found = Verification(UNVERIFIED, errors=(CheckError("", 0, 0, str(exc)),))
        merged = Verification(found.status, c.verification.stages + found.stages, found.errors)
        return replace(c, verification=merged)

    return list(await asyncio.gather(*(one(c) for c in candidates)))


@dataclass(frozen=True)
class _Attempt:
    """One answer of the model, what became of it, and the conversation that led to it
    (what a repair round continues)."""

    messages: tuple[ChatMessage, ...]
    answer: str
    outcome: Candidate | Rejected
    #: The texts the answer was applied to, for files a repaired candidate changed.
    base: Mapping[Path, str]


#: An answer to judge: its candidate id, its text, the conversation it answers, its base.
_Answer = tuple[str, str, tuple[ChatMessage, ...], Mapping[Path, str]]


def _needs_repair(attempt: _Attempt) -> bool:
    outcome = attempt.outcome
    return isinstance(outcome, Rejected) or outcome.verification.failed


def _good_enough(candidates: Sequence[Candidate]) -> bool:
    """A candidate the compiler did not reject (or could not judge, or that brought no
    error of its own): no repair needed."""
    return any(not c.verification.failed for c in candidates)


def _feedback(attempt: _Attempt, strategy: str) -> str:
    outcome = attempt.outcome
    if isinstance(outcome, Rejected):
        return apply_feedback(outcome.reason, strategy)
    texts = {c.rel: c.new for c in outcome.changes}
    v = outcome.verification
    return compile_feedback(v.errors, outcome.diff, texts, v.status, strategy)


def _plus(a: int | None, b: int | None) -> int | None:
    """Token counts summed over calls; None when no call reported any."""
    return None if a is None and b is None else (a or 0) + (b or 0)


def _not_checked(candidate: Candidate, reason: str) -> Candidate:
    """A candidate that parses but that no compiler looked at: `unverified`, saying why."""
    v = candidate.verification
    if v.status != OK:
        return candidate
    errors = (CheckError("", 0, 0, reason),)
    return replace(candidate, verification=Verification(UNVERIFIED, v.stages, errors))


async def generate(
    req: GenerateRequest,
    ws: Workspace,
    provider: Provider,
    settings: Settings,
    support: EditorSupport,
    report: Callable[[str], None] = lambda stage: None,
    checker: Checker | None = None,
    index: WorkspaceIndex | None = None,
) -> GenerateResult:
    """Run the pipeline; model failures become `result.error`, never exceptions.

    Without a `checker` candidates that parse are `unverified`. Answers that do
    not apply or do not type-check go back to the model for up to
    `verify.repair_rounds` rounds while no candidate is good enough.
    Cancelling the awaiting task cancels the model calls (closing their streams).
    """
    result = GenerateResult(id=uuid.uuid4().hex[:12])
    result.model, result.strategy = settings.model.model, settings.model.strategy
    result.provider = settings.model.provider
    t0 = time.perf_counter()
    report("context")
    try:
        prep, sent = request_messages(req, ws, settings, support.encoding, index)
    except GenerationError as exc:
        result.error = str(exc)
        return result
    strategy = settings.model.strategy
    messages = tuple(sent)
    result.prompt = [{"role": m.role, "content": m.content} for m in messages]
    result.timings["context_ms"] = (time.perf_counter() - t0) * 1000
    report("model")
    n = req.candidates or settings.generate.candidates
    try:
        reply = await provider.complete(messages, n=n)
    except ModelError as exc:
        result.error = str(exc)
        result.timings["total_ms"] = (time.perf_counter() - t0) * 1000
        return result
    result.timings["model_ms"] = reply.total_ms
    if reply.first_token_ms is not None:
        result.timings["first_token_ms"] = reply.first_token_ms
    result.model = reply.model
    result.prompt_tokens, result.completion_tokens = reply.prompt_tokens, reply.completion_tokens
    result.answers.extend(reply.answers)
    timings = result.timings

    def add_ms(key: str, since: float) -> None:
        timings[key] = timings.get(key, 0.0) + (time.perf_counter() - since) * 1000

    async def judge(
        answers: Sequence[_Answer],
        round_: int,
    ) -> list[_Attempt]:
        """Parse, apply, parse-check and compile-check answers (id, text, messages, base)."""
        attempts: list[_Attempt] = []
        for cid, answer, history, base in answers:
            started = time.perf_counter()
            parsed = parse_answer(answer)
            add_ms("parse_ms", started)
            started = time.perf_counter()
            changes, reason = apply_parsed(parsed, prep, ws, base) if base else ([], "")
            if not changes:  # not on top of the candidate: against the current files
                changes, reason = apply_parsed(parsed, prep, ws)
            add_ms("apply_ms", started)
            outcome = (
                Rejected(cid, reply.model, reason)
                if reason is not None
                else verify(changes, cid, reply.model, support, round_)
            )
            attempts.append(_Attempt(history, answer, outcome, base))
        found = [a.outcome for a in attempts if isinstance(a.outcome, Candidate)]
        if checker is not None and found:
            report("type-check" if round_ == 0 else f"type-check (repair {round_})")
            started = time.perf_counter()
            checked = {c.id: c for c in await compile_check(found, checker)}
            add_ms("check_ms", started)
        else:
            why = "type-checking is off"
            checked = {c.id: _not_checked(c, why) for c in found}
        return [
            replace(a, outcome=checked[a.outcome.id]) if a.outcome.id in checked else a
            for a in attempts
        ]

    report("verify")
    started = time.perf_counter()
    first: list[_Answer] = [
        (f"{result.id}-{k}", a, messages, {}) for k, a in enumerate(reply.answers)
    ]
    attempts = await judge(first, 0)
    result.timings["verify_ms"] = (time.perf_counter() - started) * 1000
    every = list(attempts)
    for round_ in range(1, settings.verify.repair_rounds + 1):
        found = [a.outcome for a in every if isinstance(a.outcome, Candidate)]
        failing = [a for a in attempts if _needs_repair(a)][:n]
        if _good_enough(found) or not failing:
            break
        report(f"repair {round_}")
        result.repair_rounds = round_
        started = time.perf_counter()
        asked = [repair_messages(a.messages, a.answer, _feedback(a, strategy)) for a in failing]
        replies = await asyncio.gather(
            *(provider.complete(m, n=1) for m in asked), return_exceptions=True
        )
        again: list[_Answer] = []
        for attempt, history, answer in zip(failing, asked, replies, strict=True):
            if isinstance(answer, BaseException):
                if not isinstance(answer, ModelError):
                    raise answer
                log.info("repair of %s failed: %s", attempt.outcome.id, answer)
                continue
            base = attempt.base
            if isinstance(attempt.outcome, Candidate):
                base = {c.path: c.new for c in attempt.outcome.changes}
            result.prompt_tokens = _plus(result.prompt_tokens, answer.prompt_tokens)
            result.completion_tokens = _plus(result.completion_tokens, answer.completion_tokens)
            for text in answer.answers[:1]:
                result.answers.append(text)
                again.append((f"{attempt.outcome.id}r{round_}", text, tuple(history), base))
        attempts = await judge(again, round_)
        every.extend(attempts)
        result.timings[f"repair{round_}_ms"] = (time.perf_counter() - started) * 1000
    for attempt in every:
        if isinstance(attempt.outcome, Candidate):
            result.candidates.append(attempt.outcome)
        else:
            log.info("candidate %s rejected: %s", attempt.outcome.id, attempt.outcome.reason)
            result.rejected.append(attempt.outcome)
    result.candidates = rank(result.candidates)
    result.timings["total_ms"] = (time.perf_counter() - t0) * 1000
    return result


#: Why a candidate made for an older text of its files is not offered.
STALE = "changed while the model was answering; ask again"


def refuse_stale(result: GenerateResult, ws: Workspace) -> None:
    """Take out the candidates whose files changed since they were made (their edit would
    land at the wrong lines, or lose the user's work); when none is left, that is the
    result's error."""
    fresh: list[Candidate] = []
    for candidate in result.candidates:
        stale = stale_files(candidate.changes, ws)
        if stale:
            reason = f"{', '.join(stale)} {STALE}"
            result.rejected.append(Rejected(candidate.id, candidate.model, reason))
        else:
            fresh.append(candidate)
    if result.candidates and not fresh and result.error is None:
        result.error = result.rejected[-1].reason
    result.candidates = fresh


def stale_files(changes: Sequence[FileChange], ws: Workspace) -> list[str]:
    """Files that changed since the candidate was made (their edit would lose work)."""
    stale: list[str] = []
    for change in changes:
        now = ws.read(change.path)
        if change.old is None:
            if now is not None or change.path.exists():
                stale.append(change.rel)
        elif now is None or now.text != change.old or now.version != change.version:
            stale.append(change.rel)
    return stale
