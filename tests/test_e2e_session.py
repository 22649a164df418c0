"""The server as editors meet it: code actions (resolved or run as a command),
cancellation, position encodings and settings, over real LSP on stdio."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from tests.editor import EXAMPLE, Editor, start_editor, stop_editor, wait_until
from tests.model_server import Reply, ScriptedModel

SHAPES = "lib/shapes.ml"
#: The example's file with an instruction comment above `area` (line 7); all of it,
#: so that the candidates type-check against the interface.
WITH_COMMENT = (
    (EXAMPLE / SHAPES)
    .read_text()
    .replace(
        "let area = function", "(* ai: make rectangle areas non-negative *)\nlet area = function"
    )
)
REWRITE = """lib/shapes.ml
<<<<<<< SEARCH
  | Rect (w, h) -> w *. h
=======
  | Rect (w, h) -> abs_float (w *. h)
>>>>>>> REPLACE
"""
EXPECTED = WITH_COMMENT.replace("(* ai: make rectangle areas non-negative *)\n", "").replace(
    "w *. h\n", "abs_float (w *. h)\n"
)


@pytest.fixture
async def vscode(project: Path, model: ScriptedModel) -> Any:
    editor = await start_editor(project, model.base_url, "visual-studio-code")
    yield editor
    await stop_editor(editor)


@pytest.fixture
async def emacs(project: Path, model: ScriptedModel) -> Any:
    editor = await start_editor(project, model.base_url, "emacs")
    yield editor
    await stop_editor(editor)


async def test_resolving_an_instruction_action_calls_the_model_then(
    vscode: Editor, model: ScriptedModel
) -> None:
    uri = vscode.open(SHAPES, WITH_COMMENT)
    [action] = await vscode.code_actions(uri, 7)
    assert action.title == "AI: make rectangle areas non-negative"
    assert action.edit is None and model.requests == []  # listing never calls the model
    model.enqueue(REWRITE)
    resolved = await vscode.client.code_action_resolve_async(action)
    assert resolved.edit is not None and len(model.requests) == 1
    outcome = vscode.apply(resolved.edit)
    assert outcome.applied, outcome.failure_reason
    assert vscode.text(SHAPES) == EXPECTED  # the instruction comment went too
    # the model saw the file without the instruction comment, and the instruction
    prompt = model.requests[0]["messages"][-1]["content"]
    assert "(* ai:" not in prompt and "make rectangle areas non-negative" in prompt


async def test_without_resolve_the_action_runs_the_command_and_applies(
    emacs: Editor, model: ScriptedModel
) -> None:
    uri = emacs.open(SHAPES, WITH_COMMENT)
    [action] = await emacs.code_actions(uri, 6, 5)
    assert action.command is not None and action.edit is None
    model.enqueue(REWRITE)
    await emacs.client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command=action.command.command, arguments=action.command.arguments
        )
    )
    assert emacs.text(SHAPES) == EXPECTED


async def test_a_command_action_whose_answers_are_all_rejected_says_why_once(
    emacs: Editor, model: ScriptedModel
) -> None:
    """Emacs runs the action as `workspace/executeCommand` (apply): an answer without a
    usable edit, first round and repair, ends in one message saying why."""
    uri = emacs.open(SHAPES, WITH_COMMENT)
    [action] = await emacs.code_actions(uri, 6, 5)
    assert action.command is not None
    model.set_default("I would rather not change anything.")
    result = await emacs.client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command=action.command.command, arguments=action.command.arguments
        )
    )
    assert isinstance(result, dict)
    assert result["applied"] is False and result["candidates"] == [] and result["rejected"]
    assert len(model.requests) == 2  # the answer and its repair round
    assert await wait_until(lambda: any("no usable edit" in m for m in emacs.shown()))
    await asyncio.sleep(0.5)  # a second message would have come by now
    [said] = [m for m in emacs.shown() if "no usable edit" in m or "no edit" in m]
    assert said.startswith("AI: ") and "no edit found in the answer" in said
    assert emacs.text(SHAPES) == WITH_COMMENT


async def test_quick_fix_sends_the_error_to_the_model(vscode: Editor, model: ScriptedModel) -> None:
    uri = vscode.open(SHAPES, WITH_COMMENT)
    pos = types.Position(line=9, character=19)
    diag = types.Diagnostic(
        range=types.Range(start=pos, end=pos),
        message="This expression has type int but an expression was expected of type float",
        source="ocamllsp",
    )
    actions = await vscode.code_actions(uri, 9, 19, [diag])
    fix = next(a for a in actions if a.kind == types.CodeActionKind.QuickFix)
    assert fix.title.startswith("AI: fix This expression has type int")
    model.enqueue(REWRITE)
    resolved = await vscode.client.code_action_resolve_async(fix)
    assert resolved.edit is not None
    prompt = model.requests[0]["messages"][-1]["content"]
    assert "expected of type float" in prompt and "line 10" in prompt


async def test_a_failed_resolve_shows_the_reason(vscode: Editor, model: ScriptedModel) -> None:
    uri = vscode.open(SHAPES, WITH_COMMENT)
    [action] = await vscode.code_actions(uri, 7)
    model.enqueue(Reply(status=503, body="overloaded"))
    resolved = await vscode.client.code_action_resolve_async(action)
    assert resolved.edit is None
    assert await wait_until(lambda: any("503" in m for m in vscode.shown()))


LONG = REWRITE * 40


async def test_cancel_request_closes_the_model_stream(editor: Editor, model: ScriptedModel) -> None:
    model.enqueue(Reply(answers=LONG, stream=True, chunk_size=4, chunk_delay=0.05))
    request = asyncio.ensure_future(
        editor.client.protocol.send_request_async(
            types.WORKSPACE_EXECUTE_COMMAND,
            types.ExecuteCommandParams(
                command="ocaml-ai.generate",
                arguments=[{"uri": editor.uri(SHAPES), "instruction": "x"}],
            ),
            msg_id="to-cancel",
        )
    )
    assert await wait_until(lambda: bool(model.requests))
    await asyncio.sleep(0.2)
    editor.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="to-cancel"))
    with pytest.raises(Exception, match="cancel"):
        await asyncio.wait_for(request, 10)
    assert model.wait_for_disconnect(5)


async def test_cancelling_the_progress_returns_a_cancelled_result(
    editor: Editor, model: ScriptedModel
) -> None:
    model.enqueue(Reply(answers=LONG, stream=True, chunk_size=4, chunk_delay=0.05))
    job = asyncio.ensure_future(editor.generate(uri=editor.uri(SHAPES), instruction="x"))
    assert await wait_until(lambda: bool(model.requests))
    [token] = editor.progress_tokens("AI: ")
    editor.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(job, 10)
    assert result["cancelled"] is True and result["candidates"] == []
    assert model.wait_for_disconnect(5)
    reports: list[Any] = list(editor.client.progress_reports[token])
    ends = [r for r in reports if isinstance(r, types.WorkDoneProgressEnd)]
    assert ends and ends[-1].message == "cancelled"


EMOJI = 'let s = "😀😀" (* ai: rename s *)\nlet t = 1\n'


@pytest.mark.parametrize(
    ("offered", "chosen", "comment_start"),
    [
        ([types.PositionEncodingKind.Utf8, types.PositionEncodingKind.Utf16], "utf-8", 19),
        ([types.PositionEncodingKind.Utf16], "utf-16", 15),
        ([types.PositionEncodingKind.Utf32], "utf-16", 15),
        (None, "utf-16", 15),
    ],
)
async def test_position_encoding_is_negotiated_and_used(
    project: Path, model: ScriptedModel, offered: list[str] | None, chosen: str, comment_start: int
) -> None:
    caps = types.ClientCapabilities(
        general=types.GeneralClientCapabilities(position_encodings=offered),
        text_document=types.TextDocumentClientCapabilities(
            code_action=types.CodeActionClientCapabilities(
                data_support=True,
                resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]),
            )
        ),
    )
    editor = await start_editor(project, model.base_url, caps)
    try:
        assert editor.encoding.value == chosen
        uri = editor.open("lib/emoji.ml", EMOJI)
        [action] = await editor.code_actions(uri, 0, 0)
        assert isinstance(action.data, dict)
        assert action.data["comment"]["start"] == {"line": 0, "character": comment_start}
    finally:
        await stop_editor(editor)


async def test_invalid_settings_are_shown_and_the_server_keeps_working(
    project: Path, model: ScriptedModel
) -> None:
    (project / ".ocaml-ai.toml").write_text('[model]\nmodel = "from-file"\nretries = 0\n')
    editor = await start_editor(project, model.base_url, init_options={"model": {"temperature": 9}})
    try:
        assert await wait_until(lambda: any("model.temperature" in m for m in editor.shown()))
        model.enqueue("no edit")
        await editor.generate(uri=editor.uri(SHAPES), instruction="x")
        assert model.requests[-1]["model"] == "from-file"
        assert model.requests[-1]["temperature"] != 9

        editor.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(
                settings={"ocaml-ai": {"model": {"max_tokens": "x"}}}
            )
        )
        assert await wait_until(lambda: any("model.max_tokens" in m for m in editor.shown()))
        editor.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"ocaml-ai": {"model": {"model": "beta"}}})
        )
        model.enqueue("no edit")
        await editor.generate(uri=editor.uri(SHAPES), instruction="x")
        assert model.requests[-1]["model"] == "beta"
    finally:
        await stop_editor(editor)


async def test_environment_overrides_the_endpoint_and_carries_the_key(
    project: Path, model: ScriptedModel
) -> None:
    from tests.editor import server_env

    env = server_env(model.base_url, OCAML_AI_MODEL="env-model", OCAML_AI_API_KEY="sk-secret")
    editor = await start_editor(
        project,
        "http://127.0.0.1:9/v1",
        init_options={"model": {"base_url": "http://127.0.0.1:9/v1", "model": "ignored"}},
        env=env,
    )
    try:
        model.enqueue("no edit")
        await editor.generate(uri=editor.uri(SHAPES), instruction="x")
        assert model.requests[-1]["model"] == "env-model"
        assert model.headers[-1].get("authorization") == "Bearer sk-secret"
    finally:
        await stop_editor(editor)


async def test_shutdown_during_a_generation_ends_it_and_the_server(
    project: Path, model: ScriptedModel
) -> None:
    editor = await start_editor(project, model.base_url)
    model.enqueue(Reply(answers=LONG, stream=True, chunk_size=4, chunk_delay=0.05))
    job = asyncio.ensure_future(editor.generate(uri=editor.uri(SHAPES), instruction="x"))
    assert await wait_until(lambda: bool(model.requests))
    await asyncio.wait_for(editor.client.shutdown_session(), 10)  # raised before the fix
    await asyncio.wait_for(editor.client.stop(), 10)
    await asyncio.wait([job], timeout=10)
    assert job.done()
    assert model.wait_for_disconnect(5)
