"""The shadows of one project, handed out one check at a time.

Each shadow is synced to the editor's view of the project (open buffers over
disk) before a check when the project changed since its last sync, and warmed
(`dune build @check`) once at startup, so a check rebuilds only what a
candidate touches. A pool holds its slots with a file lock: a second process on
the same project (another editor, `ces serve`) takes the next free slots.
"""

from __future__ import annotations

import asyncio
import fcntl
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TypeVar

from .result import Verification
from .shadow import Shadow, shadow_dir

_T = TypeVar("_T")


def _claim(path: Path) -> IO[bytes] | None:
    """Lock a shadow slot for this process (`flock`, released when the file closes or
    the process dies), so two servers on one project never share a shadow."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = (path.parent / f"{path.name}.lock").open("ab")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        return None
    return lock


#: Shadow slots tried beyond `size` when other processes hold the first ones.
SPARE_SLOTS = 16


class PoolBusy(RuntimeError):
    """Other processes (editors, `ces serve`) hold every shadow slot of the project."""


class ShadowPool:
    def __init__(
        self,
        root: Path,
        size: int,
        buffers: Callable[[], Mapping[str, str]] = dict,
        cache: Path | None = None,
    ) -> None:
        self.root = root
        self._locks: list[IO[bytes]] = []
        self.shadows: list[Shadow] = []
        for slot in range(size + SPARE_SLOTS):
            if len(self.shadows) == size:
                break
            path = shadow_dir(root, slot, cache)
            lock = _claim(path)
            if lock is not None:
                self._locks.append(lock)
                self.shadows.append(Shadow(root, path))
        if len(self.shadows) < size:
            self.close()
            raise PoolBusy(f"every shadow slot of {root} is held by another process")
        #: Open buffers of the project by relative path (their text wins over the disk).
        self.buffers = buffers
        self._free: asyncio.Queue[Shadow] = asyncio.Queue()
        for shadow in self.shadows:
            self._free.put_nowait(shadow)
        self._stale: set[int] = set(range(size))

    def close(self) -> None:
        """Let other processes use the slots (the shadows stay warm on disk for them)."""
        for lock in self._locks:
            lock.close()
        self._locks.clear()

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
