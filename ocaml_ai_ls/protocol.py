"""pygls' protocol with our changes: UTF-8 preferred, open documents kept only in our
store, cancellable commands, every request answered, and fixes for pygls 2.1 bugs a
long session meets."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from cattrs.v import format_exception, transform_error
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol, lsp_method

from .positions import Encoding

log = logging.getLogger(__name__)
#: Problems named in an InvalidParams message at most.
MAX_PROBLEMS = 4
_SNAKE = re.compile(r"_([a-z])")


@dataclass(frozen=True)
class BadRequest:
    """A request whose params do not fit its method, to be answered with InvalidParams."""

    id: int | str
    method: str
    message: str
    jsonrpc: str = "2.0"


def _problem(exc: BaseException, type_: type | None) -> str:
    """cattrs' wording, but a validator's own message (`Position.line should be in range
    [0:2147483647], but was -1.`) rather than its bare "invalid value"."""
    if isinstance(exc, ValueError) and str(exc):
        return str(exc)
    return format_exception(exc, type_)


def _wire_path(problem: str) -> str:
    """`... @ $.params.text_document` as the client wrote it: `... at params.textDocument`."""
    what, at, where = problem.rpartition(" @ $.")
    if not at:
        return problem
    return f"{what} at {_SNAKE.sub(lambda m: m.group(1).upper(), where)}"


def _why(method: str, exc: BaseException) -> str:
    """One line for the client: the method, then what did not fit and where."""
    cause = exc.__cause__
    try:
        problems = transform_error(cause, format_exception=_problem) if cause else []
    except Exception:  # not a cattrs error: say what it was
        problems = [str(cause)]
    problems = [_wire_path(p) for p in problems] or [str(exc)]
    more = len(problems) - MAX_PROBLEMS
    shown = "; ".join(problems[:MAX_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
    return f"invalid params for {method}: {shown}"


class OcamlAiProtocol(LanguageServerProtocol):
    """pygls' protocol with these changes: UTF-8 preferred, cancellable commands, and
    requests with bad params answered.

    pygls runs a command's handler as a task under its own id, so
    `$/cancelRequest` for `workspace/executeCommand` would not reach it; we map
    the request id to the task and cancel it too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cancellable: dict[int | str, asyncio.Task[Any]] = {}

    def structure_message(self, data: dict[str, Any]) -> Any:
        """A request whose params fail to structure becomes a `BadRequest`.

        pygls 2.1 structures each message inside `json.loads`; a failure raises out
        of its reading loop, which logs it and reads on, so the request is never
        answered and the client waits forever.
        """
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            msg_id, method = data.get("id"), data.get("method")
            if isinstance(msg_id, bool) or not isinstance(msg_id, int | str):
                raise  # not a request (a notification): nobody waits for an answer
            if not isinstance(method, str):
                raise
            return BadRequest(msg_id, method, _why(method, exc))

    def handle_message(self, message: Any) -> None:
        if isinstance(message, BadRequest):
            log.warning("request %r: %s", message.id, message.message)
            error = JsonRpcInvalidParams(message.message).to_response_error()
            self._send_response(message.id, None, error)
            return
        super().handle_message(message)

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
