"""The language server: LSP messages wired to the handlers, nothing more.

Each registration below is one line into `handlers/`, which take the `Session`
(the state of every workspace) and return; the protocol's own changes are in
`protocol.py`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from . import __version__
from .code_actions import COMMAND
from .handlers import (
    code_action,
    configuration,
    context,
    feedback,
    generate,
    lifecycle,
    sync,
)
from .handlers.configuration import CONFIG_SECTION
from .handlers.context import CONTEXT_COMMAND
from .handlers.feedback import FEEDBACK_COMMAND
from .protocol import OcamlAiProtocol
from .session import Session

__all__ = ["CONFIG_SECTION", "CONTEXT_COMMAND", "FEEDBACK_COMMAND", "create_server"]


class OcamlAiServer(LanguageServer):
    """pygls' server with our protocol, and the session its handlers share."""

    def __init__(self) -> None:
        super().__init__(
            "ocaml-ai-ls",
            __version__,
            protocol_cls=OcamlAiProtocol,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
        )
        self.session = Session(self)

    @property
    def lsp(self) -> OcamlAiProtocol:
        assert isinstance(self.protocol, OcamlAiProtocol)
        return self.protocol


def create_server() -> OcamlAiServer:
    """A server with every feature registered (a function, so tests can make many)."""
    server = OcamlAiServer()
    session = server.session

    @server.feature(types.INITIALIZE)
    def initialize(ls: OcamlAiServer, params: types.InitializeParams) -> None:
        lifecycle.initialize(session, params)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: OcamlAiServer, params: types.InitializedParams) -> None:
        await lifecycle.initialized(session, params)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: OcamlAiServer, params: None) -> None:
        lifecycle.shutdown(session, params)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: OcamlAiServer, params: types.DidChangeConfigurationParams
    ) -> None:
        await configuration.did_change(session, params)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: OcamlAiServer, params: types.DidOpenTextDocumentParams) -> None:
        sync.did_open(session, params)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: OcamlAiServer, params: types.DidChangeTextDocumentParams) -> None:
        sync.did_change(session, params)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: OcamlAiServer, params: types.DidSaveTextDocumentParams) -> None:
        sync.did_save(session, params)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: OcamlAiServer, params: types.DidCloseTextDocumentParams) -> None:
        sync.did_close(session, params)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(
        ls: OcamlAiServer, params: types.DidChangeWatchedFilesParams
    ) -> None:
        sync.did_change_watched_files(session, params)

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, code_action.OPTIONS)
    def code_actions(
        ls: OcamlAiServer, params: types.CodeActionParams
    ) -> list[types.CodeAction] | None:
        return code_action.code_action(session, params)

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def code_action_resolve(ls: OcamlAiServer, action: types.CodeAction) -> types.CodeAction:
        return await generate.resolve(session, action)

    @server.command(COMMAND)
    async def generate_command(ls: OcamlAiServer, *args: Any) -> dict[str, Any]:
        # pygls runs a command as a task of its own: map the request's id to it, so
        # `$/cancelRequest` reaches the generation
        msg_id = ls.lsp.msg_id
        task = asyncio.current_task()
        if msg_id is not None and task is not None:
            ls.lsp.cancellable[msg_id] = task
        try:
            return await generate.command(session, *args)
        finally:
            if msg_id is not None:
                ls.lsp.cancellable.pop(msg_id, None)

    @server.command(FEEDBACK_COMMAND)
    def feedback_command(ls: OcamlAiServer, *args: Any) -> dict[str, Any]:
        return feedback.feedback(session, *args)

    @server.command(CONTEXT_COMMAND)
    async def context_command(ls: OcamlAiServer, *args: Any) -> dict[str, Any]:
        return await context.context(session, *args)

    return server
