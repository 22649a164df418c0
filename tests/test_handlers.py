"""The handlers take a `Session` and return: driven here without a server process, on a
pygls server that went through pygls' own `initialize` (nothing of ours is mocked)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from ocaml_ai_ls.handlers import code_action, feedback, generate, lifecycle, sync
from ocaml_ai_ls.session import Session
from ocaml_ai_ls.uris import path_to_uri

SOURCE = "(* ai: make it tail recursive *)\nlet rec sum = function [] -> 0 | x :: r -> x + sum r\n"


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[Session]:
    (tmp_path / "dune-project").write_text("(lang dune 3.0)\n")
    (tmp_path / "sum.ml").write_text(SOURCE)
    lsp = LanguageServer("test", "0")
    params = types.InitializeParams(
        capabilities=types.ClientCapabilities(),
        root_uri=path_to_uri(tmp_path),
        initialization_options={"verify": {"shadows": 0}},
    )
    for _ in lsp.protocol.lsp_initialize(params):  # pygls' part: capabilities, workspace
        pass
    s = Session(lsp)
    lifecycle.initialize(s, params)
    try:
        yield s
    finally:
        s.close()


def actions_at(s: Session, uri: str, line: int) -> list[types.CodeAction]:
    pos = types.Position(line=line, character=0)
    params = types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(start=pos, end=pos),
        context=types.CodeActionContext(diagnostics=[]),
    )
    return code_action.code_action(s, params) or []


async def test_documents_and_code_actions_go_through_the_session(
    session: Session, tmp_path: Path
) -> None:
    assert session.folders == [tmp_path] and session.settings.verify.shadows == 0
    uri = path_to_uri(tmp_path / "sum.ml")
    assert actions_at(session, uri, 0) == []  # not open: nothing to offer
    item = types.TextDocumentItem(uri=uri, language_id="ocaml", version=1, text=SOURCE)
    sync.did_open(session, types.DidOpenTextDocumentParams(text_document=item))
    [action] = actions_at(session, uri, 0)
    assert action.title == "AI: make it tail recursive"
    # a client without `codeAction/resolve` for edits runs the command, applying
    assert action.command is not None and action.command.arguments is not None
    [argument] = action.command.arguments
    assert isinstance(argument, dict) and argument["apply"] is True
    # the index the session holds follows the buffer
    ws = session.workspace_for(uri)
    await session.wait_for_index(ws, lambda message: None)
    assert (tmp_path / "sum.ml") in session.index_for(tmp_path).files
    change = types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text="let x = 1\n")],
    )
    sync.did_change(session, change)
    assert actions_at(session, uri, 0) == []
    doc = session.documents.get(uri)
    assert doc is not None and doc.version == 2


async def test_commands_check_their_argument_before_any_work(session: Session) -> None:
    with pytest.raises(JsonRpcInvalidParams, match="uri"):
        await generate.command(session, {"uri": 3, "instruction": "x"})
    with pytest.raises(JsonRpcInvalidParams, match="accepted"):
        feedback.feedback(session, {"id": "abc", "accepted": "yes"})
