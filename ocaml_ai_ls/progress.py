"""Server-initiated `$/progress` for one generation, cancellable by the user.

Uses `window/workDoneProgress/create` when the client supports it; otherwise
every call is a no-op, so callers never branch on the client.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)


class Progress:
    def __init__(self, ls: LanguageServer, title: str) -> None:
        self._ls = ls
        self._title = title
        self._token: str | None = None
        self._on_cancel: list[Callable[[], None]] = []

    @staticmethod
    def supported(ls: LanguageServer) -> bool:
        window = ls.client_capabilities.window
        return bool(window and window.work_done_progress)

    async def begin(self, message: str) -> None:
        if not self.supported(self._ls):
            return
        token = f"ocaml-ai-{uuid.uuid4().hex[:12]}"
        try:
            await asyncio.wait_for(self._ls.work_done_progress.create_async(token), 5)
        except Exception as exc:  # a client that refuses progress still gets its edit
            log.info("no progress: %s", exc)
            return
        self._token = token
        self._ls.work_done_progress.begin(
            token,
            types.WorkDoneProgressBegin(title=self._title, message=message, cancellable=True),
        )
        loop = asyncio.get_running_loop()
        future: Future[Any] | None = self._ls.work_done_progress.tokens.get(token)
        if future is not None:
            future.add_done_callback(
                lambda f: loop.call_soon_threadsafe(self._cancelled) if f.cancelled() else None
            )

    def on_cancel(self, callback: Callable[[], None]) -> None:
        self._on_cancel.append(callback)

    def _cancelled(self) -> None:
        for callback in self._on_cancel:
            callback()

    def report(self, message: str, percentage: int | None = None) -> None:
        if self._token is not None:
            self._ls.work_done_progress.report(
                self._token, types.WorkDoneProgressReport(message=message, percentage=percentage)
            )

    def end(self, message: str) -> None:
        if self._token is None:
            return
        token, self._token = self._token, None
        self._ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))
        self._on_cancel.clear()
        self._ls.work_done_progress.tokens.pop(token, None)  # pygls keeps them otherwise
