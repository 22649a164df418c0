"""pygls' protocol with our changes: UTF-8 preferred, open documents kept only in our
store, cancellable commands, and fixes for pygls 2.1 bugs a long session meets."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

from lsprotocol import types
from pygls.protocol import LanguageServerProtocol, lsp_method

from .positions import Encoding


class OcamlAiProtocol(LanguageServerProtocol):
    """pygls' protocol with two changes: UTF-8 preferred, and cancellable commands.

    pygls runs a command's handler as a task under its own id, so
    `$/cancelRequest` for `workspace/executeCommand` would not reach it; we map
    the request id to the task and cancel it too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cancellable: dict[int | str, asyncio.Task[Any]] = {}

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams) -> Generator[Any, Any, Any]:
        general = params.capabilities.general
        if general is not None and general.position_encodings:
            offered = [Encoding.parse(e) for e in general.position_encodings]
            # UTF-8 when offered (our native unit), else UTF-16 (always allowed)
            general.position_encodings = [
                types.PositionEncodingKind.Utf8
                if Encoding.UTF8 in offered
                else types.PositionEncodingKind.Utf16
            ]
        return (yield from super().lsp_initialize(params))

    # Open documents live in our DocumentStore (bytes + incremental tree); pygls'
    # own copy would be a second text per buffer, re-split on every keystroke.

    def _ours(self, method: str, *args: Any) -> Generator[Any, Any, None]:
        """Only our handler of `method`, without pygls' own work for it."""
        if (handler := self.fm.features.get(method)) is not None:
            yield handler, args, None

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(
        self, params: types.DidOpenTextDocumentParams
    ) -> Generator[Any, Any, None]:
        yield from self._ours(types.TEXT_DOCUMENT_DID_OPEN, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(
        self, params: types.DidChangeTextDocumentParams
    ) -> Generator[Any, Any, None]:
        yield from self._ours(types.TEXT_DOCUMENT_DID_CHANGE, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(
        self, params: types.DidCloseTextDocumentParams
    ) -> Generator[Any, Any, None]:
        yield from self._ours(types.TEXT_DOCUMENT_DID_CLOSE, params)

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Generator[Any, Any, None]:
        """Cancel what is in flight, iterating over a snapshot.

        pygls 2.1 cancels pending requests while iterating the live dict; a
        cancelled future's callback removes itself from it, so a shutdown
        during a generation failed and the server never exited
        (openlawlibrary/pygls#606).
        """
        yield from self._ours(types.SHUTDOWN, *args)
        current_id = self.msg_id
        for task in list(self.cancellable.values()):
            task.cancel()
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current_id and not future.done():
                future.cancel()
        self._shutdown = True

    def _execute_handler(
        self,
        msg_id: Any,
        handler: Any,
        callback: Any,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Forget a handler's future once it is done.

        pygls 2.1 files the future of every generator handler under a fresh id,
        and for notifications (`didChange` on each keystroke) nothing ever takes
        it out: a long session leaked one future per notification.
        """

        def done(future: Any) -> None:
            if self._request_futures.get(msg_id) is future:
                del self._request_futures[msg_id]
            callback(future)

        super()._execute_handler(msg_id, handler, done, args, kwargs)

    def _handle_cancel_notification(self, msg_id: int | str) -> None:
        task = self.cancellable.pop(msg_id, None)
        if task is not None:
            task.cancel()
        super()._handle_cancel_notification(msg_id)
