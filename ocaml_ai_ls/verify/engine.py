"""The batch checker behind `ces`: a ShadowPool callable from any thread.

The pool is asyncio (one free-shadow queue); HTTP handler threads and the
command line are not. So the pool gets its own event loop in a daemon thread
and callers block on `run_coroutine_threadsafe(...).result()`: requests queue
on the pool's free shadows, as many run at once as there are workers.

A check is what the editor's pipeline does to a candidate: the tree-sitter
parse check first (a syntax error never takes a worker), then the compiler
(and the tests) in a warm shadow. The shadows are re-synced when the files
under the root changed on disk since the last check.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
import threading
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ..paths import is_skipped_dir
from .pool import ShadowPool
from .result import OK, Verification
from .syntax import check_syntax

_T = TypeVar("_T")


class CheckEngine:
    """Warm shadows of one dune project, checking candidates for several threads."""

    def __init__(
        self,
        root: Path,
        workers: int,
        timeout: float,
        cache: Path | None = None,
        profile: str = "dev",
    ):
        self.root = root
        self.workers = workers
        #: Seconds per dune run (the build, then the tests).
        self.timeout = timeout
        #: Set once every shadow has been built.
        self.warmed = threading.Event()
        self._stamp = tree_stamp(root)  # before the first sync: a change after it resyncs
        self._stamp_lock = threading.Lock()
        # PoolBusy: slots held elsewhere
        self.pool = ShadowPool(root, workers, cache=cache, profile=profile)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ces-pool", daemon=True)
        self._thread.start()

    def warm(self, report: Callable[[int, int], None], stop: threading.Event | None = None) -> bool:
        """Sync and build every shadow (`report(done, total)` after each); False when
        `stop` was set first (the dune run under way finishes, the others never start)."""
        future = asyncio.run_coroutine_threadsafe(self.pool.warm(self.timeout, report), self._loop)
        while True:
            try:
                future.result(timeout=0.2)
                break
            except concurrent.futures.TimeoutError:
                if stop is not None and stop.is_set():
                    future.cancel()
                    return False
        self.warmed.set()
        return True

    def check(
        self, files: Mapping[str, str | None], tests: bool, syntax: bool = True
    ) -> Verification:
        """Parse, then type-check (and test) one candidate; blocks until a shadow is free.
        `syntax` off: the shadow's check alone, as the editor's pipeline asks for it
        (it parses candidates itself)."""
        parsed = Verification(OK)
        if syntax:
            parsed = check_syntax([(rel, text) for rel, text in files.items() if text is not None])
            if parsed.status != OK:
                return parsed
        self._resync_if_changed()
        found = self._run(self.pool.check(files, self.timeout, tests))
        return Verification(found.status, parsed.stages + found.stages, found.errors)

    def close(self) -> None:
        """Stop the loop and release the shadow slots (they stay warm on disk)."""
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()
        self.pool.close()

    def _resync_if_changed(self) -> None:
        stamp = tree_stamp(self.root)
        with self._stamp_lock:
            if stamp == self._stamp:
                return
            self._stamp = stamp
        # queued before the check's coroutine, so the check already syncs
        self._loop.call_soon_threadsafe(self.pool.changed)

    def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()


def tree_stamp(root: Path) -> str:
    """A digest of every file's path, size and mtime (no reads): did the tree change?

    It walks more than the shadows mirror (ignored files too): a change there
    costs one needless sync, never a stale shadow.
    """
    h = hashlib.blake2b(digest_size=16)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not is_skipped_dir(d))
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "replace"))
    return h.hexdigest()
