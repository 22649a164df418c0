"""The shadows of one project, handed out one check at a time.

Each shadow is synced to the editor's view of the project (open buffers over
disk) before a check when the project changed since its last sync, and warmed
(`dune build @check`) once at startup, so a check rebuilds only what a
candidate touches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from .result import Verification
from .shadow import Shadow, shadow_dir

_T = TypeVar("_T")


class ShadowPool:
    def __init__(
        self,
        root: Path,
        size: int,
        buffers: Callable[[], Mapping[str, str]] = dict,
        cache: Path | None = None,
    ) -> None:
        self.root = root
        self.shadows = [Shadow(root, shadow_dir(root, i, cache)) for i in range(size)]
        #: Open buffers of the project by relative path (their text wins over the disk).
        self.buffers = buffers
        self._free: asyncio.Queue[Shadow] = asyncio.Queue()
        for shadow in self.shadows:
            self._free.put_nowait(shadow)
        self._stale: set[int] = set(range(size))

    def changed(self) -> None:
        """The project changed (a buffer, a file on disk): sync before the next check."""
        self._stale = set(range(len(self.shadows)))

    async def warm(self, timeout: float, report: Callable[[int, int], None]) -> None:
        """Sync and build every shadow once, one after the other (dune is parallel already)."""
        for done in range(1, len(self.shadows) + 1):  # the queue is FIFO: each shadow once
            await self._with(lambda s: s.build(timeout))
            report(done, len(self.shadows))

    async def check(
        self, files: Mapping[str, str | None], timeout: float, tests: bool
    ) -> Verification:
        """Check one candidate's files in the next free shadow."""
        return await self._with(lambda s: s.check(files, timeout, tests))

    async def _with(self, work: Callable[[Shadow], _T]) -> _T:
        shadow = await self._free.get()
        try:
            index = self.shadows.index(shadow)
            if index in self._stale:
                self._stale.discard(index)
                await asyncio.to_thread(shadow.sync, dict(self.buffers()))
            return await asyncio.to_thread(work, shadow)
        finally:
            self._free.put_nowait(shadow)
