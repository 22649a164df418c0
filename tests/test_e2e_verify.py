"""Verification end to end: the real server over stdio type-checks candidates with
the real dune in warm shadows (or module by module without a dune project), ranks
them, repairs a type error with the compiler's report, and publishes its own
diagnostics on save; the user's files are never touched by any of it."""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types

from ocaml_ai_ls.request import parse_request
from ocaml_ai_ls.verify.shadow import shadow_dir
from tests.editor import TEST_CACHE, Editor, start_editor, stop_editor, wait_until
from tests.model_server import Reply, ScriptedModel

SHAPES = "lib/shapes.ml"
RECT = "  | Rect (w, h) -> w *. h"
AS_STRING = "  | Rect (w, h) -> string_of_float (w *. h)"  # line 9: a type error
FIXED = "  | Rect (w, h) -> abs_float (w *. h)"


def replace_block(old: str, new: str) -> str:
    return f"{SHAPES}\n<<<<<<< SEARCH\n{old}\n=======\n{new}\n>>>>>>> REPLACE\n"


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def at_area(editor: Editor, **arg: Any) -> dict[str, Any]:
    pos = {"line": 7, "character": 4}
    return {"uri": editor.uri(SHAPES), "range": {"start": pos, "end": pos}, **arg}


async def test_a_type_error_is_repaired_from_the_compilers_report(
    editor: Editor, model: ScriptedModel
) -> None:
    before = tree_digest(editor.root)
    editor.open(SHAPES)
    # the repair is written against the file as the first candidate left it
    model.enqueue(replace_block(RECT, AS_STRING), replace_block(AS_STRING, FIXED))
    result = await editor.generate(timeout=60, **at_area(editor, instruction="non-negative"))
    assert result["error"] is None, result
    best, first = result["candidates"]
    assert (best["verification"]["status"], best["round"]) == ("ok", 1)
    assert f"+{FIXED}" in best["diff"] and "string_of_float" not in best["diff"]
    assert (first["verification"]["status"], first["round"]) == ("type_error", 0)
    [error] = first["verification"]["errors"]
    assert (error["path"], error["line"]) == (SHAPES, 9)
    # the repair round sent the error, its location, the code there and the diff so far
    assert len(model.requests) == 2
    feedback = model.requests[1]["messages"][-1]["content"]
    assert f"{SHAPES}:9:" in feedback and "string" in error["message"] and "string" in feedback
    assert f"   9| {AS_STRING}" in feedback
    assert f"+{AS_STRING}" in feedback
    assert model.requests[1]["messages"][-2]["content"] == replace_block(RECT, AS_STRING)
    assert "repair 1" in editor.progress_messages()
    assert tree_digest(editor.root) == before  # checked in shadows, nothing applied


async def test_in_a_project_that_does_not_build_only_new_errors_count(
    project: Path, model: ScriptedModel
) -> None:
    (project / "lib/broken.ml").write_text('let oops : int = "not an int"\n')
    editor = await start_editor(project, model.base_url)
    try:
        model.enqueue(replace_block(RECT, FIXED))
        result = await editor.generate(timeout=60, **at_area(editor, instruction="x"))
        [cand] = result["candidates"]
        verification = cand["verification"]
        assert verification["status"] == "type_error"
        assert [(e["path"], e["preexisting"]) for e in verification["errors"]] == [
            ("lib/broken.ml", True)
        ]
        assert len(model.requests) == 1  # nothing of its own to repair
    finally:
        await stop_editor(editor)


async def test_an_answer_that_does_not_apply_is_asked_again_with_the_reason(
    editor: Editor, model: ScriptedModel
) -> None:
    invented = replace_block("  | Rectangle (w, h) -> w * h", FIXED)  # no such lines
    model.enqueue(invented, replace_block(RECT, FIXED))
    result = await editor.generate(timeout=60, **at_area(editor, instruction="non-negative"))
    [cand] = result["candidates"]
    assert (cand["verification"]["status"], cand["round"]) == ("ok", 1)
    [rejected] = result["rejected"]
    feedback = model.requests[1]["messages"][-1]["content"]
    assert feedback.startswith("Your answer could not be applied: ")
    assert rejected["reason"] in feedback and "Rect (w, h) -> w *. h" in feedback


async def test_repair_rounds_0_asks_the_model_once(project: Path, model: ScriptedModel) -> None:
    settings = {"verify": {"repair_rounds": 0}}
    editor = await start_editor(project, model.base_url, init_options=settings)
    try:
        model.enqueue(replace_block(RECT, AS_STRING), replace_block(AS_STRING, FIXED))
        result = await editor.generate(timeout=60, **at_area(editor, instruction="x"))
        assert [c["verification"]["status"] for c in result["candidates"]] == ["type_error"]
        assert len(model.requests) == 1
    finally:
        await stop_editor(editor)


async def test_candidates_are_ranked_by_the_compiler_and_the_best_is_applied(
    project: Path, model: ScriptedModel
) -> None:
    settings = {"generate": {"candidates": 3}, "verify": {"repair_rounds": 0}}
    editor = await start_editor(project, model.base_url, init_options=settings)
    try:
        uri = editor.open(SHAPES)
        bigger = replace_block(RECT, "  | Rect (w, h) ->\n    let a = w *. h in\n    abs_float a")
        model.enqueue(Reply([replace_block(RECT, AS_STRING), bigger, replace_block(RECT, FIXED)]))
        result = await editor.generate(timeout=60, apply=True, **at_area(editor, instruction="x"))
        assert model.requests[0]["n"] == 3
        statuses = [c["verification"]["status"] for c in result["candidates"]]
        assert statuses == ["ok", "ok", "type_error"]
        assert f"+{FIXED}" in result["candidates"][0]["diff"]  # the smaller ok diff first
        assert result["applied"] is True
        assert FIXED in editor.open_docs[uri][0]
        stages = [s["name"] for s in result["candidates"][0]["verification"]["stages"]]
        assert stages == ["parse", "check"]
    finally:
        await stop_editor(editor)


async def test_saving_publishes_compiler_errors_and_their_quick_fix_shows_the_code(
    editor: Editor,
) -> None:
    uri = editor.open(SHAPES)
    good = editor.text(SHAPES)
    editor.replace_all(uri, good.replace(RECT, AS_STRING))
    editor.save(SHAPES)

    def ours() -> list[types.Diagnostic]:
        return [d for d in editor.client.diagnostics.get(uri, []) if d.source == "ocaml-ai"]

    assert await wait_until(lambda: bool(ours()), timeout=60), editor.client.diagnostics
    [diag] = ours()
    assert diag.range.start.line == 8 and diag.severity == types.DiagnosticSeverity.Error
    assert diag.range.start.character == AS_STRING.index("string_of_float")
    assert "string" in diag.message
    [fix] = await editor.code_actions(uri, 8, diag.range.start.character, [diag])
    assert fix.command is not None  # this editor does not resolve code actions
    instruction = parse_request(fix.command.arguments).instruction
    assert "at line 9" in instruction and f">    9 | {AS_STRING}" in instruction
    # fixed and saved again: the diagnostics are cleared
    editor.replace_all(uri, good)
    editor.save(SHAPES)
    assert await wait_until(lambda: uri in editor.client.diagnostics and not ours(), timeout=60)


@pytest_asyncio.fixture
async def loose(tmp_path: Path, model: ScriptedModel) -> AsyncIterator[Editor]:
    """A folder of OCaml files with no dune project."""
    root = tmp_path / "loose"
    root.mkdir()
    (root / "geometry.ml").write_text("let square x = x *. x\n\nlet cube x = x *. square x\n")
    editor = await start_editor(root, model.base_url, init_options={"verify": {"repair_rounds": 0}})
    try:
        yield editor
    finally:
        await stop_editor(editor)


@pytest.mark.parametrize(
    ("new", "status"),
    [("let cube x = x *. square x *. 1.0", "ok"), ('let cube x = x *. square "3"', "type_error")],
)
async def test_without_a_dune_project_each_module_is_type_checked_alone(
    loose: Editor, model: ScriptedModel, new: str, status: str
) -> None:
    before = tree_digest(loose.root)
    model.enqueue(
        f"geometry.ml\n<<<<<<< SEARCH\nlet cube x = x *. square x\n=======\n{new}\n>>>>>>> REPLACE\n"
    )
    result = await loose.generate(timeout=60, uri=loose.uri("geometry.ml"), instruction="x")
    [cand] = result["candidates"]
    assert cand["verification"]["status"] == status, cand["verification"]
    if status == "type_error":
        [error] = cand["verification"]["errors"]
        assert (error["path"], error["line"]) == ("geometry.ml", 3)
    assert tree_digest(loose.root) == before


async def test_the_number_of_shadows_changes_without_a_restart(
    editor: Editor, model: ScriptedModel
) -> None:
    model.set_default(replace_block(RECT, FIXED))

    async def status_with(verify: dict[str, Any]) -> dict[str, Any]:
        editor.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"ocaml-ai": {"verify": verify}})
        )
        result = await editor.generate(timeout=60, **at_area(editor, instruction="x"))
        [cand] = result["candidates"]
        return dict(cand["verification"])

    assert (await status_with({"shadows": 1}))["status"] == "ok"
    off = await status_with({"shadows": 0})
    assert off["status"] == "unverified" and "type-checking is off" in off["errors"][0]["message"]
    assert (await status_with({"shadows": 3}))["status"] == "ok"
    # the server holds the slots of its 3 shadows, and no more: the old pools are closed
    slots = shadow_dir(editor.root, 0, TEST_CACHE / "ocaml-ai-ls" / "shadows").parent
    assert sorted(p.name for p in slots.glob("*.lock") if locked(p)) == [
        "0.lock",
        "1.lock",
        "2.lock",
    ]


def locked(path: Path) -> bool:
    with path.open("ab") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


async def test_a_folder_that_becomes_a_dune_project_gets_shadow_builds(
    loose: Editor, model: ScriptedModel
) -> None:
    answer = (
        "geometry.ml\n<<<<<<< SEARCH\nlet cube x = x *. square x\n=======\n"
        "let cube x = square x *. x\n>>>>>>> REPLACE\n"
    )
    model.set_default(answer)

    async def stages() -> list[str]:
        result = await loose.generate(timeout=60, uri=loose.uri("geometry.ml"), instruction="x")
        [cand] = result["candidates"]
        assert cand["verification"]["status"] == "ok", cand["verification"]
        return [s["name"] for s in cand["verification"]["stages"]]

    assert await stages() == ["parse", "ocamlc"]  # module by module
    (loose.root / "dune-project").write_text("(lang dune 2.9)\n")
    (loose.root / "dune").write_text("(library (name geometry))\n")
    assert await stages() == ["parse", "check"]  # `dune init` later: a shadow build
