"""`ocaml-ai.generate` end to end: the real server process over stdio, a real
HTTP model on 127.0.0.1 answering with scripted text, and an editor that
applies what the server sends."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lsprotocol import types

from tests.editor import Editor, wait_until
from tests.model_server import Reply, ScriptedModel

SHAPES = "lib/shapes.ml"
AREA_LINE = 6  # 0-based line of `let area = function`

AREA_OLD = """let area = function
  | Circle r -> pi *. r *. r
  | Rect (w, h) -> w *. h"""
AREA_NEW = """let area = function
  | Circle r -> pi *. r *. r
  | Rect (w, h) -> abs_float (w *. h)"""


def at_area(editor: Editor, **arg: Any) -> dict[str, Any]:
    pos = {"line": AREA_LINE + 1, "character": 4}
    return {"uri": editor.uri(SHAPES), "range": {"start": pos, "end": pos}, **arg}


async def test_prose_around_a_diff_gives_a_verified_versioned_edit(
    editor: Editor, model: ScriptedModel
) -> None:
    uri = editor.open(SHAPES)
    model.enqueue(
        "Sure! Here is the change you asked for:\n\n```diff\n"
        "--- a/lib/shapes.ml\n+++ b/lib/shapes.ml\n@@ -7,3 +7,3 @@\n"
        " let area = function\n   | Circle r -> pi *. r *. r\n"
        "-  | Rect (w, h) -> w *. h\n+  | Rect (w, h) -> abs_float (w *. h)\n"
        "```\n\nThis makes the area of a rectangle non-negative. Hope this helps!"
    )
    result = await editor.generate(
        **at_area(editor, instruction="make rectangle areas non-negative")
    )
    assert result["error"] is None and result["applied"] is False
    [cand] = result["candidates"]
    assert cand["verification"]["status"] == "ok"
    assert cand["files"] == [SHAPES]
    assert "+  | Rect (w, h) -> abs_float (w *. h)" in cand["diff"]
    [doc_edit] = cand["edit"]["documentChanges"]
    assert doc_edit["textDocument"] == {"uri": uri, "version": 1}
    assert len(doc_edit["edits"]) == 1 and doc_edit["edits"][0]["range"]["start"]["line"] == 8
    # the prompt carried the numbered file, the target item and the interface
    prompt = model.requests[0]["messages"][-1]["content"]
    assert "   7| let area = function" in prompt
    assert "Target: `area` (value_definition), lines 7-9 of lib/shapes.ml" in prompt
    assert "### lib/shapes.mli (14 lines; the other half of the module)" in prompt
    assert "make rectangle areas non-negative" in prompt
    # one progress message per stage
    messages = editor.progress_messages()
    for stage in ("context", "model", "verify", "type-check"):
        assert stage in messages


async def test_wrong_line_numbers_still_apply(editor: Editor, model: ScriptedModel) -> None:
    model.enqueue(
        "--- lib/shapes.ml\n+++ lib/shapes.ml\n@@ -31,4 +31,4 @@\n"
        " let perimeter = function\n-  | Circle r -> 2.0 *. pi *. r\n"
        "+  | Circle r -> pi *. (r +. r)\n   | Rect (w, h) -> 2.0 *. (w +. h)\n"
    )
    result = await editor.generate(uri=editor.uri(SHAPES), instruction="rewrite")
    [cand] = result["candidates"]
    assert "+  | Circle r -> pi *. (r +. r)" in cand["diff"]
    # a file that is not open gets version null
    assert cand["edit"]["documentChanges"][0]["textDocument"]["version"] is None


async def test_two_files_and_a_new_file_applied(editor: Editor, model: ScriptedModel) -> None:
    editor.open(SHAPES)
    model.enqueue(
        "I'll add a unit square, export it, and add a helper module.\n\n"
        "```diff\n--- a/lib/shapes.ml\n+++ b/lib/shapes.ml\n@@ -4,2 +4,4 @@\n"
        " \n let pi = 4.0 *. atan 1.0\n+\n+let unit_square = Rect (1.0, 1.0)\n"
        "--- a/lib/shapes.mli\n+++ b/lib/shapes.mli\n@@ -8,2 +8,5 @@\n"
        " val area : t -> float\n (** The area of a shape. *)\n+\n"
        "+val unit_square : t\n+(** A square of side 1. *)\n"
        "--- /dev/null\n+++ b/lib/units.ml\n@@ -0,0 +1 @@\n+let cm_per_inch = 2.54\n```\n"
    )
    result = await editor.generate(
        uri=editor.uri(SHAPES), instruction="add a unit square", apply=True
    )
    assert result["applied"] is True, result
    [cand] = result["candidates"]
    assert cand["files"] == [SHAPES, "lib/shapes.mli", "lib/units.ml"]
    kinds = [op.get("kind", "edit") for op in cand["edit"]["documentChanges"]]
    assert kinds == ["edit", "edit", "create", "edit"]
    assert "let unit_square = Rect (1.0, 1.0)" in editor.text(SHAPES)  # the open buffer
    assert "val unit_square : t" in (editor.root / "lib/shapes.mli").read_text()
    assert (editor.root / "lib/units.ml").read_text() == "let cm_per_inch = 2.54\n"


async def test_search_replace_applied_to_the_open_buffer(
    editor: Editor, model: ScriptedModel
) -> None:
    editor.open(SHAPES)
    model.enqueue(
        f"Changed the rectangle case.\n\nlib/shapes.ml\n```ocaml\n<<<<<<< SEARCH\n{AREA_OLD}\n"
        f"=======\n{AREA_NEW}\n>>>>>>> REPLACE\n```\n"
    )
    result = await editor.generate(**at_area(editor, instruction="abs", apply=True))
    assert result["applied"] is True
    assert AREA_NEW in editor.text(SHAPES)
    assert editor.text(SHAPES).count("let area") == 1


async def test_crlf_file_and_crlf_answer_keep_crlf(editor: Editor, model: ScriptedModel) -> None:
    path = editor.root / SHAPES
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    answer = f"lib/shapes.ml\n<<<<<<< SEARCH\n{AREA_OLD}\n=======\n{AREA_NEW}\n>>>>>>> REPLACE\n"
    model.enqueue(answer.replace("\n", "\r\n"))
    result = await editor.generate(**at_area(editor, instruction="abs", apply=True))
    assert result["applied"] is True, result
    data = path.read_bytes()
    assert AREA_NEW.replace("\n", "\r\n").encode() in data
    assert b"\n" not in data.replace(b"\r\n", b"")


async def test_answer_without_an_edit_is_rejected_with_the_reason(
    editor: Editor, model: ScriptedModel
) -> None:
    model.enqueue("I am sorry, I cannot help with OCaml today.")
    result = await editor.generate(uri=editor.uri(SHAPES), instruction="do something")
    assert result["candidates"] == [] and result["error"] is None
    [rejected] = result["rejected"]
    assert "no edit found" in rejected["reason"]


async def test_http_500_is_one_clear_error(editor: Editor, model: ScriptedModel) -> None:
    model.enqueue(Reply(status=500, body='{"error": {"message": "CUDA out of memory"}}'))
    result = await editor.generate(uri=editor.uri(SHAPES), instruction="x")
    assert result["candidates"] == []
    assert "500" in result["error"] and model.base_url in result["error"]
    assert "CUDA out of memory" in result["error"]


async def test_a_hanging_model_ends_at_the_deadline(project: Path, model: ScriptedModel) -> None:
    from tests.editor import start_editor, stop_editor

    editor = await start_editor(project, model.base_url, init_options={"model": {"deadline": 1.0}})
    try:
        model.enqueue(Reply(answers="never", hang=60))
        result = await editor.generate(timeout=20, uri=editor.uri(SHAPES), instruction="x")
        assert result["candidates"] == []
        assert "1" in result["error"] and model.base_url in result["error"]
        # the server is still serving
        model.enqueue("no edit here")
        again = await editor.generate(uri=editor.uri(SHAPES), instruction="x")
        assert again["error"] is None
    finally:
        await stop_editor(editor)


async def test_a_stream_cut_midway_is_an_error_not_a_partial_edit(
    editor: Editor, model: ScriptedModel
) -> None:
    answer = f"lib/shapes.ml\n<<<<<<< SEARCH\n{AREA_OLD}\n=======\n{AREA_NEW}\n>>>>>>> REPLACE\n"
    model.enqueue(Reply(answers=answer, stream=True, chunk_size=8, cut_after=5))
    result = await editor.generate(uri=editor.uri(SHAPES), instruction="x")
    assert result["candidates"] == []
    assert "closed the stream" in result["error"]


async def test_paths_outside_the_root_are_refused_and_nothing_is_written(
    editor: Editor, model: ScriptedModel, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.ml"
    for path in ("../outside.ml", str(outside), "lib/../../outside.ml"):
        model.enqueue(f"{path}\n<<<<<<< SEARCH\n=======\nlet pwned = 1\n>>>>>>> REPLACE\n")
        result = await editor.generate(uri=editor.uri(SHAPES), instruction="x", apply=True)
        assert result["candidates"] == [] and result["applied"] is False
        assert "refused" in result["rejected"][0]["reason"]
    assert not outside.exists()
    assert editor.applied == []


async def test_a_document_changed_during_generation_is_not_edited(
    editor: Editor, model: ScriptedModel
) -> None:
    uri = editor.open(SHAPES)
    answer = f"lib/shapes.ml\n<<<<<<< SEARCH\n{AREA_OLD}\n=======\n{AREA_NEW}\n>>>>>>> REPLACE\n"
    model.enqueue(Reply(answers=answer, hang=1.0))
    job = asyncio.ensure_future(editor.generate(**at_area(editor, instruction="x", apply=True)))
    assert await wait_until(lambda: bool(model.requests))
    typed = editor.text(SHAPES) + "\nlet typed_meanwhile = 1\n"
    editor.replace_all(uri, typed)
    result = await job
    assert result["applied"] is False and "changed while" in result["error"]
    assert editor.text(SHAPES) == typed and editor.applied == []


async def test_the_editor_refuses_a_versioned_edit_for_a_newer_buffer(
    editor: Editor, model: ScriptedModel
) -> None:
    uri = editor.open(SHAPES)
    answer = f"lib/shapes.ml\n<<<<<<< SEARCH\n{AREA_OLD}\n=======\n{AREA_NEW}\n>>>>>>> REPLACE\n"
    model.enqueue(answer)
    result = await editor.generate(**at_area(editor, instruction="x"))
    from ocaml_ai_ls.edits.workspace_edit import from_json

    edit = from_json(result["candidates"][0]["edit"])
    editor.replace_all(uri, editor.text(SHAPES) + "\n")  # version 2
    outcome = editor.apply(edit)
    assert outcome.applied is False and "version" in (outcome.failure_reason or "")


async def test_several_candidates_are_ranked_parsing_first(
    editor: Editor, model: ScriptedModel
) -> None:
    broken = AREA_NEW.replace("abs_float (w *. h)", "abs_float (w *. h")
    model.enqueue(
        Reply(
            answers=[
                f"lib/shapes.ml\n<<<<<<< SEARCH\n{AREA_OLD}\n=======\n{broken}\n>>>>>>> REPLACE\n",
                f"lib/shapes.ml\n<<<<<<< SEARCH\n{AREA_OLD}\n=======\n{AREA_NEW}\n>>>>>>> REPLACE\n",
                "no edit in this one",
            ]
        )
    )
    result = await editor.generate(uri=editor.uri(SHAPES), instruction="x", candidates=3)
    statuses = [c["verification"]["status"] for c in result["candidates"]]
    assert statuses == ["ok", "parse_error"]
    assert result["candidates"][1]["verification"]["errors"][0]["path"] == SHAPES
    assert len(result["rejected"]) == 1
    assert model.requests[0].get("n") == 3


async def test_bad_arguments_are_an_lsp_error(editor: Editor) -> None:
    try:
        await editor.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="ocaml-ai.generate", arguments=[{"uri": 3}])
        )
    except Exception as exc:
        assert "uri" in str(exc)
    else:
        raise AssertionError("expected an error")
