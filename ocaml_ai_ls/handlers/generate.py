"""`ocaml-ai.generate` and `codeAction/resolve`: one generation through the pipeline,
with `$/progress` and cancellation, applied with `workspace/applyEdit` when asked,
recorded in the metrics and followed for its outcome."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import replace
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from ..code_actions import COMMAND
from ..instructions import find_instructions
from ..metrics.store import GenerationRecord, workspace_hash
from ..pipeline import STAGES, generate, refuse_stale
from ..progress import Progress
from ..request import GenerateRequest, GenerateResult, RequestError, parse_request
from ..routing import route
from ..session import Session
from ..workspace import Workspace

log = logging.getLogger(__name__)


async def command(session: Session, *args: Any) -> dict[str, Any]:
    """The command: its argument checked (InvalidParams saying which field), the result
    as JSON. With `apply` (a code action run as a command: Emacs, Helix) the user sees
    no result, so an end without an edit is shown once: why (every answer rejected, the
    model failed, the file changed, the editor refused)."""
    try:
        req = parse_request(list(args))
    except RequestError as exc:
        raise JsonRpcInvalidParams(f"{COMMAND}: {exc}") from None
    result = await run(session, req, f"AI: {req.instruction[:50]}")
    if req.apply and not result.applied and not result.cancelled:
        session.show(f"AI: {result.failure()}")
    return result.to_json()


async def resolve(session: Session, action: types.CodeAction) -> types.CodeAction:
    """Fill in a chosen action's edit; when there is none, say why and return it as is."""
    try:
        req = parse_request(action.data)
        version = action.data.get("version") if isinstance(action.data, dict) else None
        req = _locate_again(session, req, version)
    except RequestError as exc:
        session.show(f"AI: {exc}")
        return action
    result = await run(session, req, action.title)
    if result.best is None:
        session.show(f"{action.title}: {result.failure()}")
        return action
    action.edit = result.best.edit
    return action


def _locate_again(session: Session, req: GenerateRequest, version: object) -> GenerateRequest:
    """Find a resolved action's instruction comment again if the buffer moved on."""
    doc = session.documents.get(req.uri)
    if req.comment is None or doc is None or doc.version == version:
        return req
    original = req.comment
    for found in find_instructions(doc, original.start.line, original.end.line):
        if found.text == req.instruction:
            rng = doc.index.range(found.start_byte, found.end_byte)
            return replace(req, range=rng, comment=rng)
    raise RequestError("the instruction comment is no longer there; ask again")


async def run(session: Session, req: GenerateRequest, title: str) -> GenerateResult:
    """Run the pipeline with progress; a cancelled progress gives a cancelled result."""
    session.requests_running += 1
    try:
        return await _run(session, req, title)
    finally:
        session.requests_running -= 1


async def _run(session: Session, req: GenerateRequest, title: str) -> GenerateResult:
    ws = session.workspace_for(req.uri)
    progress = Progress(session.lsp, title)
    await progress.begin(STAGES[0])

    chosen = route(session.settings)
    settings = replace(session.settings, model=chosen.model)
    support = session.support()

    async def pipeline() -> GenerateResult:
        await session.wait_for_index(ws, progress.report)
        return await generate(
            req,
            ws,
            session.provider(chosen.model),
            settings,
            support,
            progress.report,
            session.checker_for(ws),
            session.index_for(ws.root),
        )

    job = asyncio.ensure_future(pipeline())

    def cancel_job() -> None:
        job.cancel()

    progress.on_cancel(cancel_job)
    try:
        result = await job
    except asyncio.CancelledError:
        task = asyncio.current_task()
        progress.end("cancelled")
        if task is not None and task.cancelling():
            job.cancel()
            raise  # $/cancelRequest: LSP answers RequestCancelled
        return GenerateResult(id="", cancelled=True, error="cancelled")
    result.arm = chosen.arm
    if req.apply or not support.document_changes:
        # an edit we apply, or one without versions, would not be refused by the editor
        refuse_stale(result, ws)
    if req.apply and result.best is not None:
        progress.report("applying")
        await _apply(session, result, req.instruction)
    progress.end(result.failure() if result.best is None else "done")
    _record(session, result, ws)
    if req.apply:
        session.report_outcome(result.id, result.applied, None)
    if result.applied or not req.apply:  # offered edits: the editor may apply them
        _follow(session, result, req, result.applied)
    return result


async def _apply(session: Session, result: GenerateResult, instruction: str) -> None:
    """Send the best candidate with `workspace/applyEdit`."""
    best = result.best
    assert best is not None
    answer = await session.lsp.workspace_apply_edit_async(
        types.ApplyWorkspaceEditParams(edit=best.edit, label=f"AI: {instruction[:60]}")
    )
    result.applied = bool(answer.applied)
    if not answer.applied:
        result.error = "the editor did not apply the edit" + (
            f": {answer.failure_reason}" if answer.failure_reason else ""
        )


def _follow(session: Session, result: GenerateResult, req: GenerateRequest, applied: bool) -> None:
    """Watch the request's document for the edit's outcome (kept, undone, unused)."""
    best = result.best
    if best is None or not result.id:
        return
    change = next((c for c in best.changes if c.uri == req.uri), best.changes[0])
    session.outcomes.watch(result.id, change.uri, best.diff, change.rel, applied)


def _record(session: Session, result: GenerateResult, ws: Workspace) -> None:
    """One metrics row for a generation; never fails the generation."""
    store = session.metrics()
    if store is None or not result.id:
        return
    t = result.timings
    best = result.best
    keep = store.store_prompts
    try:
        store.record(
            GenerationRecord(
                request_id=result.id,
                time=time.time(),
                workspace=workspace_hash(ws.root),
                provider=result.provider,
                model=result.model,
                arm=result.arm,
                strategy=result.strategy,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                context_ms=t.get("context_ms"),
                first_token_ms=t.get("first_token_ms"),
                model_ms=t.get("model_ms"),
                parse_ms=t.get("parse_ms"),
                apply_ms=t.get("apply_ms"),
                verify_ms=t.get("verify_ms"),
                total_ms=t.get("total_ms"),
                candidates=len(result.candidates) + len(result.rejected),
                applied_candidates=len(result.candidates),
                best_status=best.verification.status if best is not None else None,
                repair_rounds=result.repair_rounds,
                error=result.error,
                prompt=json.dumps(result.prompt) if keep else None,
                answers=json.dumps(result.answers) if keep else None,
            )
        )
    except Exception:  # a metrics bug must not cost the user the edit
        log.exception("recording generation %s failed", result.id)
