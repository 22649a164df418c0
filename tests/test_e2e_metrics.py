"""Metrics and A/B routing end to end: the real server records a row per generation
in a real SQLite file, learns outcomes from `ocaml-ai.feedback` and from what
happens to the edit in the document, and routes users to model arms by settings
that change at runtime; a corrupt database costs a warning, never a generation."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from lsprotocol import types

from tests.editor import Editor, server_env, start_editor, stop_editor, wait_until
from tests.model_server import ScriptedModel
from tests.wire_servers import OllamaModel

SHAPES = "lib/shapes.ml"
RECT = "  | Rect (w, h) -> w *. h"
FIXED = "  | Rect (w, h) -> abs_float (w *. h)"
ANSWER = f"{SHAPES}\n<<<<<<< SEARCH\n{RECT}\n=======\n{FIXED}\n>>>>>>> REPLACE\n"
SECRET = "sk-test-secret-0123456789"


def rows(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM generations ORDER BY time")]


async def row_of(db: Path, request_id: str, **wanted: Any) -> dict[str, Any]:
    """The row of a generation once it holds `wanted` (the writer is a thread)."""
    found: dict[str, Any] = {}

    def ready() -> bool:
        nonlocal found
        if not db.exists():
            return False
        try:
            found = next((r for r in rows(db) if r["request_id"] == request_id), {})
        except sqlite3.OperationalError:  # the writer has not made the table yet
            return False
        return bool(found) and all(found.get(k) == v for k, v in wanted.items())

    assert await wait_until(ready, timeout=10), (found, wanted)
    return found


@pytest_asyncio.fixture
async def metered(
    project: Path, model: ScriptedModel, tmp_path: Path
) -> AsyncIterator[tuple[Editor, Path]]:
    db = tmp_path / "metrics.sqlite3"
    env = server_env(model.base_url, OCAML_AI_METRICS_DB=str(db), OCAML_AI_API_KEY=SECRET)
    editor = await start_editor(project, model.base_url, env=env)
    try:
        yield editor, db
    finally:
        await stop_editor(editor)


async def generate(editor: Editor, **arg: Any) -> dict[str, Any]:
    pos = {"line": 8, "character": 4}
    return await editor.generate(
        uri=editor.uri(SHAPES), instruction="x", range={"start": pos, "end": pos}, **arg
    )


async def test_a_generation_is_recorded_without_the_key(
    project: Path, model: ScriptedModel, tmp_path: Path
) -> None:
    db = tmp_path / "metrics.sqlite3"
    env = server_env(model.base_url, OCAML_AI_METRICS_DB=str(db), OCAML_AI_API_KEY=SECRET)
    editor = await start_editor(project, model.base_url, env=env)
    try:
        model.enqueue(ANSWER)
        result = await generate(editor)
        row = await row_of(db, result["id"])
    finally:
        await stop_editor(editor)  # the writer flushes at shutdown
    assert (row["provider"], row["model"], row["arm"]) == ("openai", "scripted-model", "")
    assert (row["strategy"], row["best_status"], row["candidates"]) == ("search_replace", "ok", 1)
    assert row["total_ms"] > 0 and row["model_ms"] > 0 and row["verify_ms"] > 0
    assert row["prompt"] is None and row["answers"] is None  # not kept unless asked
    assert row["workspace"] and str(editor.root) not in row["workspace"]
    assert model.headers[0]["authorization"] == f"Bearer {SECRET}"  # the key was in use
    for name in (db.name, db.name + "-wal"):
        path = db.parent / name
        if path.exists():
            assert SECRET.encode() not in path.read_bytes()


async def test_feedback_and_an_edit_kept_or_undone_are_outcomes(
    metered: tuple[Editor, Path], model: ScriptedModel
) -> None:
    editor, db = metered
    uri = editor.open(SHAPES)
    original = editor.text(SHAPES)
    # the client says so itself
    model.enqueue(ANSWER)
    said = await generate(editor)
    done = await editor.client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="ocaml-ai.feedback", arguments=[{"id": said["id"], "accepted": False}]
        )
    )
    assert done == {"id": said["id"], "accepted": False}
    await row_of(db, said["id"], accepted=0)
    # applied by the server, kept until the save: accepted
    model.enqueue(ANSWER)
    kept = await generate(editor, apply=True)
    assert kept["applied"] is True
    editor.save(SHAPES)
    await row_of(db, kept["id"], applied=1, accepted=1)
    # applied, then undone before the save: rejected
    editor.replace_all(uri, original)
    model.enqueue(ANSWER)
    undone = await generate(editor, apply=True)
    editor.replace_all(uri, original)
    editor.save(SHAPES)
    await row_of(db, undone["id"], applied=1, accepted=0)
    # offered only; the editor applies it itself, then the file is closed
    model.enqueue(ANSWER)
    offered = await generate(editor)
    editor.replace_all(uri, original.replace(RECT, FIXED))
    editor.client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    await row_of(db, offered["id"], applied=1, accepted=1)


async def test_users_are_routed_to_arms_that_change_at_runtime(
    project: Path, model: ScriptedModel, tmp_path: Path
) -> None:
    model.set_default(ANSWER)
    db = tmp_path / "metrics.sqlite3"
    arms: list[dict[str, Any]] = [
        {"name": "a", "model": "model-a"},
        {"name": "b", "model": "model-b", "weight": 0},
    ]
    settings = {"routing": {"user_id": "alice", "arms": arms}}
    env = server_env(model.base_url, OCAML_AI_METRICS_DB=str(db))
    editor = await start_editor(project, model.base_url, init_options=settings, env=env)
    try:
        first = await generate(editor)
        assert (first["arm"], model.requests[-1]["model"]) == ("a", "model-a")
        arms[0]["weight"], arms[1]["weight"] = 0, 1
        editor.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"ocaml-ai": {"routing": {"arms": arms}}})
        )
        second = await generate(editor)
        assert (second["arm"], model.requests[-1]["model"]) == ("b", "model-b")
        row = await row_of(db, second["id"])
        assert (row["arm"], row["model"]) == ("b", "scripted-model")  # the model that answered
    finally:
        await stop_editor(editor)


async def test_an_arm_may_use_another_wire_format(project: Path, model: ScriptedModel) -> None:
    with OllamaModel() as ollama:
        ollama.enqueue(ANSWER)
        arm = {"name": "local", "provider": "ollama", "base_url": ollama.base_url}
        settings = {"routing": {"arms": [arm]}}
        editor = await start_editor(project, model.base_url, init_options=settings)
        try:
            result = await generate(editor)
            assert (result["arm"], result["provider"]) == ("local", "ollama")
            assert result["candidates"][0]["verification"]["status"] == "ok"
            assert ollama.paths[-1] == "/api/chat" and model.requests == []
        finally:
            await stop_editor(editor)


async def test_a_corrupt_database_is_a_warning_and_generations_go_on(
    project: Path, model: ScriptedModel, tmp_path: Path
) -> None:
    db = tmp_path / "metrics.sqlite3"
    db.write_bytes(b"this is not a database\n" * 100)
    before = db.read_bytes()
    env = server_env(model.base_url, OCAML_AI_METRICS_DB=str(db))
    editor = await start_editor(project, model.base_url, env=env)
    try:
        for _ in range(3):
            model.enqueue(ANSWER)
            result = await generate(editor)
            assert result["candidates"][0]["verification"]["status"] == "ok"
        assert await wait_until(lambda: any(str(db) in m for m in editor.shown()))
        assert len([m for m in editor.shown() if str(db) in m]) == 1
    finally:
        await stop_editor(editor)
    assert db.read_bytes() == before


async def test_a_user_keeps_the_arm_across_restarts(project: Path, model: ScriptedModel) -> None:
    model.set_default(ANSWER)
    arms = [{"name": f"arm{i}", "model": f"model-{i}"} for i in range(4)]
    seen = []
    for user in ("alice@a", "alice@a", "bob@b", "bob@b"):
        settings = {"routing": {"user_id": user, "arms": arms}}
        editor = await start_editor(project, model.base_url, init_options=settings)
        try:
            seen.append((await generate(editor))["arm"])
        finally:
            await stop_editor(editor)
    assert seen[0] == seen[1] and seen[2] == seen[3]
    assert [model.requests[i]["model"] for i in range(4)] == [f"model-{arm[-1]}" for arm in seen]
