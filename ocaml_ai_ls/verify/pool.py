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
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

from .result import REJECTED, TIMEOUT, Verification, against_baseline
from .shadow import Run, Shadow, shadow_dir

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


#: Changed files remembered one by one; past this a shadow syncs its whole tree.
MAX_PENDING = 200
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
        profile: str = "dev",
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
                self.shadows.append(Shadow(root, path, profile))
        if len(self.shadows) < size:
            self.close()
            raise PoolBusy(f"every shadow slot of {root} is held by another process")
        #: Open buffers of the project by relative path (their text wins over the disk).
        self.buffers = buffers
        self._free: asyncio.Queue[Shadow] = asyncio.Queue()
        for shadow in self.shadows:
            self._free.put_nowait(shadow)
        #: Per shadow, the files to sync before its next use; None: the whole tree.
        self._pending: list[set[str] | None] = [None] * size
        #: The project checked as it is, while nothing changed since (see `baseline`).
        self._baseline: Verification | None = None
        #: Counts `changed` calls: a baseline checked across a change is not kept.
        self._generation = 0
        self._baseline_lock = asyncio.Lock()

    def close(self) -> None:
        """Stop dune in every shadow and let other processes use the slots (the shadows
        stay warm on disk for them)."""
        for shadow in self.shadows:
            shadow.stop()
        for lock in self._locks:
            lock.close()
        self._locks.clear()

    async def drain(self) -> None:
        """Wait until no check runs: take every shadow (the pool is not used after)."""
        for _ in self.shadows:
            await self._free.get()

    def changed(self, rel: str | None = None) -> None:
        """A file of the project changed (a buffer, the disk), or anything (`rel` None):
        the shadows sync it before their next check."""
        self._generation += 1
        self._baseline = None
        whole = rel is None or rel.endswith(".gitignore")
        for i, pending in enumerate(self._pending):
            if pending is not None and not whole and len(pending) < MAX_PENDING:
                assert rel is not None
                pending.add(rel)
            else:
                self._pending[i] = None

    async def warm(self, timeout: float, report: Callable[[int, int], None]) -> list[Run]:
        """Sync and build every shadow once, one after the other (dune is parallel
        already); a shadow never built starts from a copy of the first one's `_build`.
        The pool is held meanwhile: its `_build` is copied while no check runs in it."""
        held: list[Shadow] = []
        try:
            for _ in self.shadows:
                held.append(await self._free.get())
        except asyncio.CancelledError:
            for shadow in held:
                self._free.put_nowait(shadow)
            raise
        return await self._hold(held, self._warm_all(held, timeout, report))

    async def _warm_all(
        self, held: list[Shadow], timeout: float, report: Callable[[int, int], None]
    ) -> list[Run]:
        runs: list[Run] = []
        for done, shadow in enumerate(held, 1):
            if runs and runs[0].code == 0:
                await asyncio.to_thread(shadow.seed_from, held[0])
            run = await self._synced(shadow, lambda s: s.build(timeout))
            if run.stopped:
                break
            runs.append(run)
            report(done, len(held))
        return runs

    async def check(
        self, files: Mapping[str, str | None], timeout: float, tests: bool
    ) -> Verification:
        """Check one candidate's files in the next free shadow. When the compiler rejects
        them, the errors the project already had are marked `preexisting`; an empty
        `files` checks the project as it is (and becomes the baseline)."""
        if not files and not tests:
            return await self._check_as_is(timeout)
        found = await self._with(lambda s: s.check(files, timeout, tests))
        if found.status in REJECTED:
            found = against_baseline(found, await self.baseline(timeout))
        return found

    async def baseline(self, timeout: float) -> Verification:
        """The project as it is, checked once per change (in the next free shadow)."""
        async with self._baseline_lock:
            if self._baseline is not None:
                return self._baseline
            return await self._check_as_is(timeout)

    async def _check_as_is(self, timeout: float) -> Verification:
        generation = self._generation
        found = await self._with(lambda s: s.check({}, timeout, False))
        if generation == self._generation and found.status != TIMEOUT:
            self._baseline = found
        return found

    async def _with(self, work: Callable[[Shadow], _T]) -> _T:
        """Run `work` in the next free shadow, in a thread. The shadow is free again only
        when the thread is done, so no second check starts in a shadow still in use; a
        cancelled caller interrupts the shadow's dune run to have it free at once."""
        shadow = await self._free.get()
        return await self._hold([shadow], self._synced(shadow, work))

    async def _hold(self, held: list[Shadow], body: Coroutine[Any, Any, _T]) -> _T:
        """Run `body` on shadows taken from the free queue, giving them back when it is
        done (not when a cancelled caller stops waiting: it interrupts their dune)."""
        job = asyncio.ensure_future(body)

        def release(done: asyncio.Future[_T]) -> None:
            for shadow in held:
                shadow.interrupted = False
                self._free.put_nowait(shadow)
            if not done.cancelled():
                done.exception()  # retrieved: a cancelled caller does not care

        job.add_done_callback(release)
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            if not job.done():
                for shadow in held:
                    shadow.interrupt()
            raise

    async def _synced(self, shadow: Shadow, work: Callable[[Shadow], _T]) -> _T:
        index = self.shadows.index(shadow)
        pending, self._pending[index] = self._pending[index], set()
        if pending is None or pending:
            buffers = dict(self.buffers())
            try:
                await asyncio.to_thread(shadow.sync, buffers, pending)
            except BaseException:
                self._pending[index] = None  # half synced: all of it next time
                raise
        return await asyncio.to_thread(work, shadow)
