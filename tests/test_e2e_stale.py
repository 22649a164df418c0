"""A document edited while the model is answering, in an editor that does not announce
`documentChanges`: its edits are a plain `changes` map without versions, so nothing in
the editor would notice an edit made for the old text. Every path (code action
resolve, `ocaml-ai.generate` with and without `apply`) ends with the right text or
says why there is no edit; never a change at the wrong lines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lsprotocol import types

from ocaml_ai_ls.edits.workspace_edit import from_json
from tests.editor import Editor, start_editor, stop_editor, wait_until
from tests.model_server import Reply, ScriptedModel

SHAPES = "lib/shapes.ml"
REWRITE = """lib/shapes.ml
<<<<<<< SEARCH
  | Rect (w, h) -> w *. h
=======
  | Rect (w, h) -> abs_float (w *. h)
>>>>>>> REPLACE
"""
#: What the user types at the top of the file while the model answers (lines move down).
TYPED = "(* typed while the model was answering *)\nlet typed = 1\n"
STALE = "changed while the model was answering; ask again"

#: An editor applying plain `changes` only (no documentChanges, no resource operations),
#: resolving a code action's edit.
PLAIN = types.ClientCapabilities(
    window=types.WindowClientCapabilities(work_done_progress=True),
    workspace=types.WorkspaceClientCapabilities(
        apply_edit=True,
        configuration=False,
        workspace_edit=types.WorkspaceEditClientCapabilities(document_changes=False),
    ),
    text_document=types.TextDocumentClientCapabilities(
        code_action=types.CodeActionClientCapabilities(
            data_support=True,
            resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]),
        )
    ),
)


@pytest.fixture
async def plain(project: Path, model: ScriptedModel) -> AsyncIterator[Editor]:
    editor = await start_editor(project, model.base_url, PLAIN)
    try:
        yield editor
    finally:
        await stop_editor(editor)


def expected_after_typing(original: str) -> str:
    """The user's typing, and the model's edit where it belongs."""
    return TYPED + original.replace("w *. h\n", "abs_float (w *. h)\n")


async def type_while_the_model_answers(editor: Editor, model: ScriptedModel, uri: str) -> str:
    """Wait for the model to be asked, then type at the top of the buffer."""
    assert await wait_until(lambda: bool(model.requests), 20)
    original = editor.text(SHAPES)
    editor.replace_all(uri, TYPED + original)
    await asyncio.sleep(0.1)  # the change reaches the server before the model answers
    return original


def assert_right_or_refused(
    editor: Editor, original: str, edit: types.WorkspaceEdit | None
) -> None:
    """Either the edit, applied to the text as it is now, gives the right text, or there is
    no edit and the user is told why."""
    if edit is not None:
        outcome = editor.apply(edit)
        assert outcome.applied, outcome.failure_reason
        assert editor.text(SHAPES) == expected_after_typing(original)
    else:
        assert editor.text(SHAPES) == TYPED + original


async def test_generate_without_apply(plain: Editor, model: ScriptedModel) -> None:
    uri = plain.open(SHAPES)
    model.enqueue(Reply(answers=REWRITE, hang=1.5))
    job = asyncio.ensure_future(plain.generate(uri=uri, instruction="x"))
    original = await type_while_the_model_answers(plain, model, uri)
    result = await job
    edit = from_json(result["candidates"][0]["edit"]) if result["candidates"] else None
    if edit is None:
        assert STALE in result["error"] and SHAPES in result["error"]
        assert any(STALE in r["reason"] for r in result["rejected"])
    assert_right_or_refused(plain, original, edit)


async def test_generate_with_apply(plain: Editor, model: ScriptedModel) -> None:
    uri = plain.open(SHAPES)
    model.enqueue(Reply(answers=REWRITE, hang=1.5))
    job = asyncio.ensure_future(plain.generate(uri=uri, instruction="x", apply=True))
    original = await type_while_the_model_answers(plain, model, uri)
    result = await job
    if result["applied"]:
        assert plain.text(SHAPES) == expected_after_typing(original)
    else:
        assert STALE in result["error"]
        assert await wait_until(lambda: any(STALE in m for m in plain.shown()))
        assert_right_or_refused(plain, original, None)


async def test_code_action_resolve(plain: Editor, model: ScriptedModel) -> None:
    text = (plain.root / SHAPES).read_text()
    with_comment = text.replace("let area", "(* ai: make rectangle areas non-negative *)\nlet area")
    uri = plain.open(SHAPES, with_comment)
    [action] = await plain.code_actions(uri, 6, 5)
    assert action.data is not None and action.edit is None
    model.enqueue(Reply(answers=REWRITE, hang=1.5))
    job = asyncio.ensure_future(plain.client.code_action_resolve_async(action))
    await type_while_the_model_answers(plain, model, uri)
    resolved = await asyncio.wait_for(job, 30)
    if resolved.edit is None:
        assert await wait_until(lambda: any(STALE in m for m in plain.shown()))
        assert plain.text(SHAPES) == TYPED + with_comment
    else:
        outcome = plain.apply(resolved.edit)
        assert outcome.applied, outcome.failure_reason
        # the instruction comment went, the edit is where it belongs, the typing stays
        assert plain.text(SHAPES) == expected_after_typing(text)


async def test_typing_elsewhere_after_the_answer_is_no_reason_to_refuse(
    plain: Editor, model: ScriptedModel
) -> None:
    """Only a change while the model answered counts: an unchanged buffer gets its edit."""
    uri = plain.open(SHAPES)
    model.enqueue(REWRITE)
    result = await plain.generate(uri=uri, instruction="x")
    [candidate] = result["candidates"]
    assert "changes" in candidate["edit"] and result["error"] is None
    original = plain.text(SHAPES)
    assert plain.apply(from_json(candidate["edit"])).applied
    assert plain.text(SHAPES) == original.replace("w *. h\n", "abs_float (w *. h)\n")
