"""`ocaml-ai.context` end to end: the real server over stdio slicing the fixture
projects, following open buffers and the disk, reporting its indexing, and
refusing bad arguments. The command never calls the model."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

from ocaml_ai_ls.context.show import slice_at
from ocaml_ai_ls.positions import Encoding
from ocaml_ai_ls.server import CONTEXT_COMMAND
from ocaml_ai_ls.uris import path_to_uri
from tests.editor import FULL, Editor, server_env, start_editor, stop_editor, wait_until
from tests.model_server import ScriptedModel

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "projects"
INDEXING = "ocaml-ai: indexing"
MAIN = "bin/main.ml"
#: .ml/.mli files of the wrapped fixture: bin 2, lib 9, util 2.
WRAPPED_SOURCES = 13
#: 0-based line inside `centroids` (lines 25-26), which uses `G.Shape.centroid`.
CENTROIDS_BODY = 25
#: 0-based line of `midpoint` (line 29), which uses `G.Vec.add`.
MIDPOINT = 28


# -- helpers ------------------------------------------------------------------


def copy_fixture(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    shutil.copytree(FIXTURES / name, root)
    return root


def at(editor: Editor, rel: str, line: int, character: int = 0, **extra: Any) -> dict[str, Any]:
    pos = {"line": line, "character": character}
    return {"uri": editor.uri(rel), "range": {"start": pos, "end": pos}, **extra}


async def context(editor: Editor, *arguments: Any, timeout: float = 10) -> dict[str, Any]:
    result = await asyncio.wait_for(
        editor.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=CONTEXT_COMMAND, arguments=list(arguments))
        ),
        timeout,
    )
    assert isinstance(result, dict)
    return result


def indexing_reports(editor: Editor) -> list[Any]:
    tokens = editor.progress_tokens(INDEXING)
    assert len(tokens) <= 1, tokens
    return list(editor.client.progress_reports[tokens[0]]) if tokens else []


def indexed(editor: Editor) -> bool:
    return any(isinstance(r, types.WorkDoneProgressEnd) for r in indexing_reports(editor))


async def wait_indexed(editor: Editor) -> None:
    assert await wait_until(lambda: indexed(editor), 15), indexing_reports(editor)


def pieces_of(result: dict[str, Any], path: str, rank: int | None = None) -> list[dict[str, Any]]:
    return [
        p for p in result["pieces"] if p["path"] == path and (rank is None or p["rank"] == rank)
    ]


def check_texts(result: dict[str, Any], texts: Callable[[str], str]) -> None:
    """Every piece shows exactly the lines it claims, from the text the server sees."""
    for p in [*result["pieces"], *result["dropped"]]:
        lines = texts(p["path"]).splitlines()
        assert p["lines"], p
        assert p["startLine"] == p["lines"][0] and p["endLine"] == p["lines"][-1]
        assert p["lines"] == sorted(set(p["lines"])), p["lines"]
        assert p["text"] == "\n".join(lines[n - 1] for n in p["lines"]), (p["path"], p["label"])


def partial_change(
    editor: Editor, uri: str, start: tuple[int, int], end: tuple[int, int], text: str
) -> None:
    """One incremental `didChange` (UTF-16 = bytes here: the fixtures are ASCII)."""
    content, version = editor.open_docs[uri]
    lines = content.splitlines(keepends=True)

    def offset(line: int, character: int) -> int:
        return sum(len(s) for s in lines[:line]) + character

    new = content[: offset(*start)] + text + content[offset(*end) :]
    editor.open_docs[uri] = (new, version + 1)
    rng = types.Range(
        start=types.Position(line=start[0], character=start[1]),
        end=types.Position(line=end[0], character=end[1]),
    )
    editor.client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version + 1),
            content_changes=[types.TextDocumentContentChangePartial(range=rng, text=text)],
        )
    )


def watched(editor: Editor, rel: str, kind: types.FileChangeType) -> None:
    editor.client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(changes=[types.FileEvent(uri=editor.uri(rel), type=kind)])
    )


async def start_custom(
    root: Path,
    base_url: str,
    capabilities: types.ClientCapabilities,
    handlers: dict[str, Any],
) -> Editor:
    """Like `start_editor`, with some of the client's handlers replaced or added
    before the session starts (so they see what the server does at `initialized`)."""

    def factory() -> LanguageClient:
        client = LanguageClient(converter_factory=default_converter)
        register_lsp_features(client, {**DEFAULT_CLIENT_FEATURES, **handlers})
        return client

    config = ClientServerConfig(
        server_command=[sys.executable, "-m", "ocaml_ai_ls"],
        client_factory=factory,
        server_env=server_env(base_url),
    )
    client = await config.start()
    assert isinstance(client, LanguageClient)
    result = await client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities,
            root_uri=path_to_uri(root),
            workspace_folders=[types.WorkspaceFolder(uri=path_to_uri(root), name=root.name)],
        )
    )
    editor = Editor(client, root, Encoding.parse(result.capabilities.position_encoding))
    client.feature(types.WORKSPACE_APPLY_EDIT)(lambda params: editor.apply(params.edit))
    return editor


@pytest.fixture
def wrapped(tmp_path: Path) -> Path:
    return copy_fixture(tmp_path, "wrapped")


@pytest_asyncio.fixture
async def session(wrapped: Path, model: ScriptedModel) -> AsyncIterator[Editor]:
    """An editor on a copy of the wrapped fixture, its index built (a request made
    before the scan runs waits for it: see the test below)."""
    ed = await start_editor(wrapped, model.base_url)
    try:
        await wait_indexed(ed)
        yield ed
    finally:
        await stop_editor(ed)


# -- the slice ------------------------------------------------------------------


async def test_context_of_a_function_using_another_module(
    session: Editor, wrapped: Path, model: ScriptedModel
) -> None:
    result = await context(session, at(session, MAIN, CENTROIDS_BODY, 2))

    assert result["path"] == MAIN
    assert result["target"] == {
        "path": MAIN,
        "startLine": 25,
        "endLine": 26,
        "kind": "value_definition",
        "name": "centroids",
    }
    first = result["pieces"][0]
    assert (first["rank"], first["role"], first["path"]) == (1, "the target", MAIN)
    assert (first["startLine"], first["endLine"], first["lines"]) == (25, 26, [25, 26])
    assert first["label"] == "`centroids`"
    assert first["text"] == (
        "let centroids (scene : G.Scene.t) =\n"
        "  List.map (fun s -> G.Vec.to_string (G.Shape.centroid s)) scene.shapes"
    )
    [centroid] = [p for p in pieces_of(result, "lib/shape.mli", 4) if "centroid" in p["label"]]
    assert centroid["role"] == "definitions the target uses or the instruction names"
    assert centroid["reason"] == "the target uses `G.Shape.centroid`"
    assert centroid["label"] == "`G.Shape.centroid`: function centroid"
    assert (centroid["startLine"], centroid["endLine"]) == (33, 33)
    assert centroid["text"] == "val centroid : t -> Vec.t"
    [dune] = pieces_of(result, "bin/dune", 7)
    assert dune["role"] == "the dune stanza"
    assert dune["label"] == "executable main (workspace libraries it uses: geo, util)"
    assert dune["lines"] == [1, 2, 3]
    assert dune["text"] == (wrapped / "bin/dune").read_text().rstrip("\n")
    # the other uses of the target are there too, and nothing was squeezed out
    rank4 = {(p["path"], p["startLine"]) for p in result["pieces"] if p["rank"] == 4}
    elsewhere = {("lib/scene.mli", 3), ("lib/shape.mli", 33), ("lib/vec.mli", 30)}
    assert rank4 - {(MAIN, 3)} == elsewhere  # and maybe `module G = Geo`, the path's alias
    assert [p["rank"] for p in result["pieces"]] == sorted(p["rank"] for p in result["pieces"])
    assert result["dropped"] == [] and result["budget"] == 6000
    assert 0 < result["tokens"] <= result["budget"]
    check_texts(result, lambda rel: (wrapped / rel).read_text())
    # the server slices as the library does for the command line
    assert result == slice_at(wrapped / MAIN, CENTROIDS_BODY + 1, wrapped).to_json()
    assert "explain" not in result
    explained = await context(session, at(session, MAIN, CENTROIDS_BODY, 2, explain=True))
    assert explained["pieces"] == result["pieces"]
    lines = explained["explain"].splitlines()
    assert lines[0] == f"{MAIN}: {result['tokens']} of 6000 tokens, {len(result['pieces'])} pieces"
    assert "                the target uses `G.Shape.centroid`" in lines
    assert model.requests == []


async def test_context_follows_unsaved_buffers_and_incremental_changes(
    session: Editor, wrapped: Path, model: ScriptedModel
) -> None:
    # `val add` is `val plus` in an unsaved buffer only; main.ml uses it, unsaved too
    vec_uri = session.open(
        "lib/vec.mli", (wrapped / "lib/vec.mli").read_text().replace("val add", "val plus")
    )
    session.open(
        MAIN, (wrapped / MAIN).read_text().replace("(G.Vec.add (G.Shape", "(G.Vec.plus (G.Shape")
    )
    assert "plus" not in (wrapped / "lib/vec.mli").read_text()

    result = await context(session, at(session, MAIN, MIDPOINT, 4))
    assert result["target"]["name"] == "midpoint"
    assert result["pieces"][0]["text"] == (
        "(** Midpoint between the centroids of two shapes. *)\n"
        "let midpoint a b = G.Vec.scale 0.5 (G.Vec.plus (G.Shape.centroid a) (G.Shape.centroid b))"
    )
    [plus] = [p for p in pieces_of(result, "lib/vec.mli", 4) if "plus" in p["label"]]
    assert plus["label"] == "`G.Vec.plus`: function plus"
    assert plus["lines"] == [14, 15]
    assert plus["text"] == "(** Component-wise sum. *)\nval plus : t -> t -> t"
    check_texts(result, session.text)

    # two incremental edits of the buffer: two lines on top, then a new argument
    partial_change(session, vec_uri, (0, 0), (0, 0), "(* one *)\n(* two *)\n")
    assert session.text("lib/vec.mli").splitlines()[16] == "val plus : t -> t -> t"
    partial_change(session, vec_uri, (16, 11), (16, 11), "float -> ")
    result = await context(session, at(session, MAIN, MIDPOINT, 4))
    [plus] = [p for p in pieces_of(result, "lib/vec.mli", 4) if "plus" in p["label"]]
    assert plus["lines"] == [16, 17]
    assert plus["text"] == "(** Component-wise sum. *)\nval plus : float -> t -> t -> t"
    [vec_t] = [p for p in pieces_of(result, "lib/vec.mli") if "type t =" in p["text"]]
    assert vec_t["lines"][-4:] == [6, 7, 8, 9]  # moved down by the two lines too
    check_texts(result, session.text)

    # closed without saving: the disk's `val add` counts again, `plus` is gone
    session.client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=vec_uri))
    )
    del session.open_docs[vec_uri]
    result = await context(session, at(session, MAIN, MIDPOINT, 4))
    assert not [p for p in result["pieces"] if "plus" in p["label"]]
    assert not [p for p in result["pieces"] if "plus" in p["text"] and p["path"] != MAIN]
    check_texts(result, session.text)
    assert model.requests == []


EXTRA_USER = "bin/extra_user.ml"


async def test_context_follows_files_created_changed_and_deleted_on_disk(
    session: Editor, wrapped: Path, model: ScriptedModel
) -> None:
    extra = wrapped / "lib/extra.ml"
    extra.write_text("(** Added on disk. *)\nlet extra_value = 42\n")
    watched(session, "lib/extra.ml", types.FileChangeType.Created)
    session.open(EXTRA_USER, "let show () = print_int Geo.Extra.extra_value\n")

    result = await context(session, at(session, EXTRA_USER, 0, 4))
    assert result["target"]["name"] == "show"
    [found] = pieces_of(result, "lib/extra.ml")
    assert found["rank"] == 4
    assert found["label"] == "`Geo.Extra.extra_value`: value extra_value"
    assert (found["lines"], found["text"]) == (
        [1, 2],
        "(** Added on disk. *)\nlet extra_value = 42",
    )
    check_texts(result, session.text)

    extra.write_text("(** Changed on disk. *)\nlet extra_value = 43\n")
    watched(session, "lib/extra.ml", types.FileChangeType.Changed)
    result = await context(session, at(session, EXTRA_USER, 0, 4))
    [found] = pieces_of(result, "lib/extra.ml")
    assert found["text"] == "(** Changed on disk. *)\nlet extra_value = 43"

    extra.unlink()
    watched(session, "lib/extra.ml", types.FileChangeType.Deleted)
    result = await context(session, at(session, EXTRA_USER, 0, 4))
    assert pieces_of(result, "lib/extra.ml") == []
    assert not any("extra_value" in p["text"] for p in result["pieces"] if p["path"] != EXTRA_USER)
    assert model.requests == []


async def test_a_watched_file_event_does_not_override_an_open_buffer(
    session: Editor, wrapped: Path
) -> None:
    session.open("lib/extra.ml", "let extra_value = 1\n")
    (wrapped / "lib/extra.ml").write_text("let extra_value = 2\n")
    watched(session, "lib/extra.ml", types.FileChangeType.Created)
    session.open(EXTRA_USER, "let show () = print_int Geo.Extra.extra_value\n")
    result = await context(session, at(session, EXTRA_USER, 0, 4))
    [found] = pieces_of(result, "lib/extra.ml")
    assert found["text"] == "let extra_value = 1"


# -- indexing and registration ------------------------------------------------------


async def test_indexing_reports_progress_from_begin_to_end(
    wrapped: Path, model: ScriptedModel
) -> None:
    editor = await start_editor(wrapped, model.base_url)
    try:
        await wait_indexed(editor)
        reports = indexing_reports(editor)
        begin, *middle, end = reports
        assert isinstance(begin, types.WorkDoneProgressBegin)
        assert (begin.title, begin.message, begin.cancellable) == (INDEXING, "wrapped", True)
        assert [(r.message, r.percentage) for r in middle] == [
            (f"{WRAPPED_SOURCES}/{WRAPPED_SOURCES} files", 100)
        ]
        assert isinstance(end, types.WorkDoneProgressEnd)
        assert end.message == f"{WRAPPED_SOURCES} files"
        assert model.requests == []
    finally:
        await stop_editor(editor)


WATCHING = types.ClientCapabilities(
    window=types.WindowClientCapabilities(work_done_progress=True),
    workspace=types.WorkspaceClientCapabilities(
        did_change_watched_files=types.DidChangeWatchedFilesClientCapabilities(
            dynamic_registration=True
        )
    ),
)


async def test_file_watchers_are_registered_when_the_client_can(
    wrapped: Path, model: ScriptedModel
) -> None:
    registrations: list[types.RegistrationParams] = []

    def register(client: LanguageClient, params: types.RegistrationParams) -> None:
        registrations.append(params)

    editor = await start_custom(
        wrapped, model.base_url, WATCHING, {types.CLIENT_REGISTER_CAPABILITY: register}
    )
    try:
        assert await wait_until(lambda: bool(registrations))
        [params] = registrations
        [registration] = params.registrations
        assert registration.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES
        options = registration.register_options
        globs = [w["globPattern"] for w in options["watchers"]] if options else []
        assert globs == ["**/*.ml", "**/*.mli", "**/dune"]
        await wait_indexed(editor)
    finally:
        await stop_editor(editor)


async def test_a_request_right_after_startup_waits_for_the_index(
    wrapped: Path, model: ScriptedModel
) -> None:
    """The client answers `window/workDoneProgress/create` for the indexing only
    after sending the request, so the server has the request before the scan can
    start; a correct server answers it with the whole workspace indexed."""
    release = asyncio.Event()

    async def create(client: LanguageClient, params: types.WorkDoneProgressCreateParams) -> None:
        await release.wait()
        client.progress_reports.setdefault(params.token, [])

    editor = await start_custom(
        wrapped, model.base_url, FULL, {types.WINDOW_WORK_DONE_PROGRESS_CREATE: create}
    )
    try:
        request = editor.client.protocol.send_request_async(
            types.WORKSPACE_EXECUTE_COMMAND,
            types.ExecuteCommandParams(
                command=CONTEXT_COMMAND, arguments=[at(editor, MAIN, CENTROIDS_BODY, 2)]
            ),
        )
        release.set()  # written after the request on the same pipe
        result = await asyncio.wait_for(request, 15)
        assert isinstance(result, dict)
        await wait_indexed(editor)
        assert [p["path"] for p in pieces_of(result, "lib/shape.mli", 4)] == ["lib/shape.mli"]
        assert [p["path"] for p in result["pieces"] if p["rank"] == 7] == ["bin/dune"]
    finally:
        await stop_editor(editor)


# -- bad arguments and broken code --------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([{}], "`uri` must be a file: URI"),
        ([{"range": None}], "`uri` must be a file: URI"),
        ([{"uri": "untitled:Untitled-1"}], "`uri` must be a file: URI"),
        ([{"uri": "https://example.org/main.ml"}], "`uri` must be a file: URI"),
        ([{"uri": 42}], "`uri` must be a file: URI"),
        ([], "takes one object"),
        ([{"uri": "MAIN", "range": {"start": {"line": -1, "character": 0}}}], "`range`"),
        ([{"uri": "MISSING"}], "cannot read"),
    ],
)
async def test_bad_arguments_give_invalid_params_and_the_server_keeps_serving(
    session: Editor, model: ScriptedModel, arguments: list[Any], message: str
) -> None:
    replace = {"MAIN": session.uri(MAIN), "MISSING": session.uri("bin/missing.ml")}
    arguments = [
        {k: replace.get(v, v) if isinstance(v, str) else v for k, v in a.items()} for a in arguments
    ]
    with pytest.raises(JsonRpcException) as caught:
        await context(session, *arguments)
    assert isinstance(caught.value, JsonRpcInvalidParams)
    assert caught.value.code == -32602
    assert str(caught.value).startswith(f"{CONTEXT_COMMAND}: ")
    assert message in str(caught.value)

    result = await context(session, at(session, MAIN, CENTROIDS_BODY))
    assert result["target"]["name"] == "centroids"
    assert model.requests == []


UNCLOSED = ("(G.Shape.centroid s)) scene.shapes", "(G.Shape.centroid s) scene.shapes")


async def test_a_syntax_error_in_the_target_still_gives_a_context(
    session: Editor, model: ScriptedModel
) -> None:
    broken = session.text(MAIN).replace(*UNCLOSED)
    assert broken != session.text(MAIN)
    session.open(MAIN, broken)
    result = await context(session, at(session, MAIN, CENTROIDS_BODY, 2))
    first = result["pieces"][0]
    assert first["rank"] == 1 and first["path"] == MAIN
    assert 26 in first["lines"]
    assert "(G.Shape.centroid s) scene.shapes" in first["text"]
    assert result["target"] is not None and result["target"]["path"] == MAIN
    # the definitions the broken line uses are still found
    assert "val centroid : t -> Vec.t" in [p["text"] for p in pieces_of(result, "lib/shape.mli", 4)]
    check_texts(result, session.text)
    # and a keystroke later it still answers
    uri = session.uri(MAIN)
    partial_change(session, uri, (25, 0), (25, 0), "  (")
    result = await context(session, at(session, MAIN, CENTROIDS_BODY, 2))
    assert result["pieces"][0]["rank"] == 1
    check_texts(result, session.text)
    assert model.requests == []


async def test_a_syntax_error_keeps_the_enclosing_function_as_the_target(
    session: Editor,
) -> None:
    session.open(MAIN, session.text(MAIN).replace(*UNCLOSED))
    result = await context(session, at(session, MAIN, CENTROIDS_BODY, 2))
    target = result["target"]
    assert (target["startLine"], target["name"]) == (25, "centroids")
    assert result["pieces"][0]["lines"][:2] == [25, 26]


async def test_a_stray_file_outside_any_project_is_not_a_root_to_scan(
    tmp_path: Path, model: ScriptedModel
) -> None:
    """A file in a directory that is neither a workspace folder nor a project (no
    dune-project, .git, .ocaml-ai.toml) gets its context, but its directory is
    not indexed: it could be `/etc` or a home directory."""
    project = tmp_path / "project"
    shutil.copytree(FIXTURES / "wrapped", project)
    stray = tmp_path / "elsewhere" / "loose"
    stray.mkdir(parents=True)
    (stray / "big_dir_sibling.ml").write_text("let sibling = 1\n")
    (stray / "lone.ml").write_text("let lone = sibling + 1\n")
    editor = await start_editor(project, model.base_url)
    try:
        await wait_indexed(editor)
        uri = path_to_uri(stray / "lone.ml")
        args = {
            "uri": uri,
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
        }
        result = await editor.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=CONTEXT_COMMAND, arguments=[args])
        )
        assert isinstance(result, dict) and result["target"]["name"] == "lone"
        # one indexing progress, the project's; none for the stray directory
        assert not await wait_until(lambda: len(editor.progress_tokens(INDEXING)) > 1, 2)
        assert model.requests == []
    finally:
        await stop_editor(editor)
