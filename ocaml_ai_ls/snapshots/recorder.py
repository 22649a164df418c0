"""The recorder: snapshots of a workspace, each with the build state of exactly its files.

Every interval the recorder stamps the source files (path, size, mtime, and the
open buffers' texts); when the stamp moved, it collects the files and, if their
tree differs from the last snapshot's, type-checks that very set of files and
stores both. The check runs in a warm shadow build of its own (a `ShadowPool`
of one, which takes a free slot by `flock`, apart from the editor's), given
the collected files as its buffers, so what is checked is what is stored even
when the disk changes meanwhile; the user's `_build` is never touched.

Without a dune project (or without dune) the changed modules are compiled on
their own (`verify/single.py`, as editor candidates are outside dune): green
when they compile, red when one that compiled alone in the previous snapshot
does not any more, unknown when it never compiled alone (its dependencies are
nowhere to be found: an error cannot be told from a missing module), when no
module changed, or without a compiler. Modules that did not change are not
checked again: "green" says the last change compiles.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from ..config import SnapshotSettings
from ..ignores import walk_project
from ..verify.pool import PoolBusy, ShadowPool
from ..verify.result import OK, REJECTED, UNVERIFIED, CheckError, Verification
from ..verify.single import SingleFileChecker
from .store import (
    GREEN,
    RED,
    UNKNOWN,
    BuildState,
    Snapshot,
    SnapshotStore,
    StoreBusy,
    is_secret,
    is_source,
    source_files,
)

log = logging.getLogger(__name__)

#: Seconds one type-check of a snapshot may take (`verify.timeout` by default).
DEFAULT_TIMEOUT = 60.0

#: The files of the previous snapshot, read only when a checker needs them.
Previous = Callable[[], Mapping[str, bytes]]


class StateChecker(Protocol):
    """Type-checks one snapshot's files."""

    async def check(self, files: Mapping[str, bytes], previous: Previous) -> BuildState: ...

    def close(self) -> None: ...


def state_of(found: Verification) -> BuildState:
    """The build state a verification means: ok is green, a compiler error red, and
    anything else (a timeout, not verifiable) unknown, with the reason."""
    if found.status == OK:
        return BuildState(GREEN)
    if found.status in REJECTED:
        return BuildState(RED, found.errors)
    return BuildState(UNKNOWN, found.errors)


class ShadowChecker:
    """A dune project, checked in a warm shadow of its own (kept for the checker's life)."""

    def __init__(self, root: Path, cache: Path | None = None, timeout: float = DEFAULT_TIMEOUT):
        self.root = root
        self.cache = cache
        self.timeout = timeout
        self._pool: ShadowPool | None = None
        #: The files being checked, as the shadow's open buffers (they win over the disk).
        self._texts: dict[str, str] = {}
        #: One check at a time: `_texts` is the state of the check under way.
        self._busy = asyncio.Lock()

    async def check(self, files: Mapping[str, bytes], previous: Previous) -> BuildState:
        async with self._busy:
            return await self._check(files)

    async def _check(self, files: Mapping[str, bytes]) -> BuildState:
        if self._pool is None:
            try:
                self._pool = ShadowPool(self.root, 1, buffers=lambda: self._texts, cache=self.cache)
            except PoolBusy as exc:
                return BuildState(UNKNOWN, (CheckError("", 0, 0, str(exc)),))
        texts: dict[str, str] = {}
        for rel, data in files.items():
            try:
                texts[rel] = data.decode("utf-8")
            except UnicodeDecodeError:  # the shadow copies it from the disk
                continue
        self._texts = texts
        self._pool.changed()  # the whole tree: files may be gone as well as changed
        return state_of(await self._pool.check({}, self.timeout, False))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


class ModuleChecker:
    """No dune project: the changed modules compiled on their own (see the module doc)."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._checker = SingleFileChecker()

    async def check(self, files: Mapping[str, bytes], previous: Previous) -> BuildState:
        before = previous()
        changed: dict[str, str | None] = {}
        for rel, data in files.items():
            if rel.endswith((".ml", ".mli")) and before.get(rel) != data:
                changed[rel] = _text(data)
        if not changed:
            return BuildState(UNKNOWN, (CheckError("", 0, 0, "no module changed"),))

        def now(rel: str) -> str | None:
            data = files.get(rel)
            return None if data is None else _text(data)

        def then(rel: str) -> str | None:
            # A module's previous text tells a new error from a missing dependency; a
            # new module is its own previous text (so never red on its own).
            data = before.get(rel, files.get(rel))
            return None if data is None else _text(data)

        # Green when the changed modules compile alone now; red when they do not but
        # did before; unknown when they never did (or there is no compiler).
        found = await asyncio.to_thread(self._checker.check, changed, now, self.timeout)
        if found.status == UNVERIFIED:
            found = await asyncio.to_thread(self._checker.check, changed, then, self.timeout)
        return state_of(found)

    def close(self) -> None:
        pass


def make_checker(
    root: Path, cache: Path | None = None, timeout: float = DEFAULT_TIMEOUT
) -> StateChecker:
    """A shadow build for a dune project when dune is installed, else module by module."""
    if (root / "dune-project").is_file() and shutil.which("dune"):
        return ShadowChecker(root, cache, timeout)
    return ModuleChecker(timeout)


async def take_snapshot(
    root: Path,
    store: SnapshotStore,
    checker: StateChecker,
    buffers: Mapping[str, str] | None = None,
    *,
    wait: float = 30.0,
) -> Snapshot | None:
    """One snapshot of `root` (open `buffers` over the disk) with the build state of
    exactly those files; None when nothing changed since the last snapshot (then
    nothing is type-checked)."""
    files = await asyncio.to_thread(source_files, root, buffers)
    if not await asyncio.to_thread(store.differs, files):
        return None

    def previous() -> Mapping[str, bytes]:
        head = store.head()
        return store.files(head) if head is not None else {}

    state = await checker.check(files, previous)
    return await asyncio.to_thread(store.take, files, state, wait=wait)


def source_stamp(root: Path, buffers: Mapping[str, str]) -> str:
    """Cheap to compute, different whenever a source file may have changed: each
    file's path, size and mtime, and each buffer's text."""
    h = hashlib.blake2b(digest_size=16)
    for path, rel in walk_project(root):
        if not is_source(rel) or is_secret(rel):
            continue
        try:
            st = path.stat()
        except OSError:
            continue
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    for rel, text in sorted(buffers.items()):
        h.update(f"{rel}\0".encode("utf-8", "surrogateescape"))
        h.update(hashlib.blake2b(text.encode("utf-8", "surrogateescape")).digest())
    return h.hexdigest()


class Recorder:
    """Snapshots of one root every `settings.interval` seconds while something changed;
    one warm shadow kept for its life. `buffers` gives the open buffers (relative
    path → text) and is called on the event loop."""

    def __init__(
        self,
        root: Path,
        settings: SnapshotSettings,
        buffers: Callable[[], Mapping[str, str]] = dict,
        data_dir: Path | None = None,
        cache: Path | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        on_snapshot: Callable[[Snapshot], None] | None = None,
    ) -> None:
        self.root = root
        self.settings = settings
        self.buffers = buffers
        self.store = SnapshotStore(root, data_dir)
        self.checker = make_checker(root, cache, timeout)
        self.on_snapshot = on_snapshot
        self._stamp: str | None = None
        #: The last failure logged (the same one again is not).
        self._failure: str | None = None

    async def take(self, *, wait: float = 30.0) -> Snapshot | None:
        """One snapshot now (None: nothing changed since the last one)."""
        buffers = dict(self.buffers())
        stamp = await asyncio.to_thread(source_stamp, self.root, buffers)
        return await self._take(buffers, stamp, wait)

    async def _take(self, buffers: Mapping[str, str], stamp: str, wait: float) -> Snapshot | None:
        snap = await take_snapshot(self.root, self.store, self.checker, buffers, wait=wait)
        # Stamped before the files were read: a change in between is seen next time.
        self._stamp = stamp
        if snap is not None and self.on_snapshot is not None:
            self.on_snapshot(snap)
        return snap

    async def run(self, stop: asyncio.Event, interval: float | None = None) -> None:
        """Until `stop` is set: every interval, a snapshot if a source file changed.
        A failure (a busy store, git missing) is logged and tried again next time."""
        every = interval if interval is not None else self.settings.interval
        while not stop.is_set():
            try:
                buffers = dict(self.buffers())
                stamp = await asyncio.to_thread(source_stamp, self.root, buffers)
                if stamp != self._stamp:
                    await self._take(buffers, stamp, wait=0)
                self._failure = None
            except StoreBusy as exc:
                log.info("snapshot skipped: %s", exc)
            except Exception as exc:  # logged once per kind, tried again every interval
                if repr(exc) != self._failure:
                    log.exception("snapshot of %s failed", self.root)
                self._failure = repr(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    def close(self) -> None:
        """Stop the shadow's dune, if any, and free its slot."""
        self.checker.close()


def _text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
