"""The server's state, one object: what every handler reads and changes.

As in ruff's server, the LSP layer translates messages and a `Session` holds
the state of every workspace: open documents and their versions, settings,
the context index per root, the shadow builds per dune project, the snapshot
recorders, the metrics store, the providers. Handlers (`handlers/`) take the
session and return; the background work the state needs (indexing, warming
shadows, recording snapshots) is started here, where the state is.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import shutil
import threading
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from .config import ModelSettings, Settings, SettingsLayers, api_key
from .context.index import WorkspaceIndex, settle
from .context.slicer import warm
from .context.summary_store import SummaryStore
from .documents import DocumentStore
from .metrics.store import MetricsStore, default_db_path
from .outcomes import OutcomeTracker
from .paths import is_inside
from .pipeline import Checker, EditorSupport
from .progress import Progress
from .providers import ManagedProvider, make_provider
from .request import RequestError
from .uris import uri_to_path
from .verify.pool import PoolBusy, ShadowPool
from .verify.result import Verification
from .verify.single import SingleFileChecker, disk_reader
from .workspace import Workspace, find_root, is_project

if TYPE_CHECKING:  # imported when recording starts: most sessions never record
    from .snapshots.recorder import Recorder

log = logging.getLogger(__name__)

#: Providers kept (one per arm and fallback in use); the oldest beyond are closed.
MAX_PROVIDERS = 8
#: How long a request waits for its workspace's first index before slicing anyway.
INDEX_WAIT_SECONDS = 10.0


class Session:
    """Per-workspace state, and the editor it belongs to (`lsp`: messages, progress,
    requests to the client)."""

    def __init__(self, lsp: LanguageServer) -> None:
        self.lsp = lsp
        self.documents = DocumentStore()
        self.layers = SettingsLayers()
        self.settings = Settings()
        self.folders: list[Path] = []
        self.startup_errors: list[str] = []
        #: A provider per model settings in use (`[model]`, each arm; with the fallback).
        self._providers: dict[tuple[Any, ...], ManagedProvider] = {}
        #: The metrics database, opened on the first generation (None: telemetry off).
        self._metrics: MetricsStore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.outcomes = OutcomeTracker(self.report_outcome)
        #: Snapshot recorders per workspace folder (`snapshots.enabled`), with their stops.
        self.recorders: dict[Path, tuple[Recorder, asyncio.Event, asyncio.Future[None]]] = {}
        #: Set at `initialized`: from then on settings changes start or stop recorders.
        self.started = False
        #: One context index per workspace root, built in the background.
        self.indexes: dict[Path, WorkspaceIndex] = {}
        self.stopping = threading.Event()
        self._background: set[asyncio.Future[None]] = set()
        #: Set when a root's first scan has ended (done, cancelled or failed).
        self.index_done: dict[Path, asyncio.Event] = {}
        #: Requests being answered: warming an index waits for none (see `_build_index`).
        self.requests_running = 0
        #: Warm shadow builds per dune project root (None: none for that root).
        self.pools: dict[Path, ShadowPool | None] = {}
        #: Roots whose pool was tried as a dune project (not tried again when it failed).
        self._tried_dune: set[Path] = set()
        #: Pools of an earlier `verify.shadows`, closing when their checks are done.
        self.retiring: set[ShadowPool] = set()
        #: Checks modules one by one where there is no dune project (or no dune).
        self.single = SingleFileChecker()
        #: Per root, the URIs that have our diagnostics published.
        self.published: dict[Path, set[str]] = {}
        #: Per root, the check after a save under way, and the roots saved again since.
        self.diagnosing: dict[Path, asyncio.Future[None]] = {}
        self.diagnose_again: set[Path] = set()

    # -- the editor ----------------------------------------------------------

    def show(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        self.lsp.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def support(self) -> EditorSupport:
        """What the editor can apply, from the capabilities it announced."""
        caps = self.lsp.client_capabilities
        ws_edit = caps.workspace.workspace_edit if caps.workspace else None
        ops = (ws_edit.resource_operations or []) if ws_edit else []
        return EditorSupport(
            encoding=self.documents.encoding,
            # resource operations exist only in documentChanges, so a client that
            # lists them handles documentChanges even if it does not say so (Neovim)
            document_changes=bool(ws_edit and (ws_edit.document_changes or ops)),
            create_files=types.ResourceOperationKind.Create in ops,
        )

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
        """Run background work, keeping a reference so it is not collected mid-way."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- settings ------------------------------------------------------------

    def adopt(self, layers: SettingsLayers, changed: str | None) -> list[str]:
        """Use new layers unless the changed one is invalid; return the errors."""
        settings, errors = layers.build()
        if changed is not None and any(e.startswith(changed) for e in errors):
            return [e for e in errors if e.startswith(changed)]
        verify_before = self.settings.verify
        snapshots_before = self.settings.snapshots
        self.layers, self.settings = layers, settings
        if (settings.verify.shadows, settings.verify.profile) != (
            verify_before.shadows,
            verify_before.profile,
        ):
            self.retire_pools()
        if self.started and settings.snapshots != snapshots_before:
            self.sync_recorders()
        return errors

    def provider(self, model: ModelSettings) -> ManagedProvider:
        """The provider for these model settings (an arm's) and the fallback, made once
        per distinct settings and keys; the least recently made beyond a few are closed."""
        fallback = self.settings.fallback
        fallback_key = api_key(fallback) if fallback is not None else None
        key = (model, api_key(model), fallback, fallback_key)
        found = self._providers.get(key)
        if found is None:
            found = make_provider(model, key[1], fallback, fallback_key)
            self._providers[key] = found
            while len(self._providers) > MAX_PROVIDERS:
                oldest = next(iter(self._providers))
                self.spawn(self._providers.pop(oldest).aclose())
        return found

    # -- snapshots -----------------------------------------------------------

    def sync_recorders(self) -> None:
        """Record snapshots of every folder while `snapshots.enabled` (restarted when the
        snapshot settings change); stop them when it is off."""
        for recorder, stop, running in self.recorders.values():
            stop.set()
            self.spawn(self._close_recorder(recorder, running))
        self.recorders = {}
        if not self.settings.snapshots.enabled or self.stopping.is_set():
            return
        from .snapshots.recorder import Recorder

        for folder in self.folders:
            buffers = functools.partial(self.buffers_under, folder)
            recorder = Recorder(folder, self.settings.snapshots, buffers)
            stop = asyncio.Event()
            self.recorders[folder] = (recorder, stop, self.spawn(recorder.run(stop)))

    async def _close_recorder(self, recorder: Recorder, running: asyncio.Future[None]) -> None:
        """Let a snapshot under way finish (bounded), then free the recorder's shadow."""
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(running), 30)
        recorder.close()

    # -- metrics -------------------------------------------------------------

    def metrics(self) -> MetricsStore | None:
        """The metrics store for `telemetry.db`, opened on first use (None: off)."""
        t = self.settings.telemetry
        if not t.enabled:
            return None
        path = default_db_path(t.db)
        if self._metrics is not None and self._metrics.path != path:
            self._metrics.close()
            self._metrics = None
        if self._metrics is None:
            self._loop = asyncio.get_running_loop()  # where warnings are shown from
            self._metrics = MetricsStore(path, self.warn_soon, store_prompts=t.store_prompts)
        self._metrics.store_prompts = t.store_prompts
        return self._metrics

    def warn_soon(self, message: str) -> None:
        """Show a warning from any thread (the metrics writer's included)."""
        log.warning("%s", message)
        loop = self._loop
        if loop is not None and not loop.is_closed() and not self.stopping.is_set():
            loop.call_soon_threadsafe(
                self.show, f"ocaml-ai-ls: {message}", types.MessageType.Warning
            )

    def report_outcome(self, request_id: str, applied: bool | None, accepted: bool | None) -> None:
        store = self.metrics()
        if store is not None:
            store.outcome(request_id, applied=applied, accepted=accepted)

    # -- the context index ---------------------------------------------------

    def workspace_for(self, uri: str) -> Workspace:
        """The workspace a request's file belongs to (the first request on a root starts
        indexing it)."""
        path = uri_to_path(uri)
        if path is None:
            raise RequestError(f"{uri} is not a file URI")
        root = find_root(path, self.folders)
        self.index_for(root)
        return Workspace(root, self.documents)

    def index_for(self, root: Path) -> WorkspaceIndex:
        """The root's index; the first call starts indexing it in the background."""
        index = self.indexes.get(root)
        if index is None:
            index = self.indexes[root] = WorkspaceIndex(
                root, self.documents, store=SummaryStore.for_root(root)
            )
            if root not in self.folders and not is_project(root):
                # a stray file's directory (`/etc`, a home directory): not a project to
                # scan; its files are still read on demand when a request names them
                log.info("not indexing %s: neither a workspace folder nor a project", root)
                return index
            self.index_done[root] = asyncio.Event()  # before the task: requests wait on it
            self.spawn(self._build_index(index))
        return index

    def index_holding(self, uri: str) -> tuple[Path, WorkspaceIndex] | None:
        """A file URI's path and the innermost existing index whose root holds it."""
        path = uri_to_path(uri)
        if path is None:
            return None
        holding = [i for r, i in self.indexes.items() if is_inside(path, r)]
        return (path, max(holding, key=lambda i: len(i.root.parts))) if holding else None

    async def _build_index(self, index: WorkspaceIndex) -> None:
        """Index every source file in a thread, with cancellable `$/progress`.

        The scan starts at once; the progress is created beside it (a client
        may take its time to answer `window/workDoneProgress/create`).
        """
        done = self.index_done.setdefault(index.root, asyncio.Event())
        progress = Progress(self.lsp, "ocaml-ai: indexing")
        loop = asyncio.get_running_loop()
        cancelled = threading.Event()

        def report(count: int, total: int) -> None:
            percent = count * 100 // max(total, 1)
            loop.call_soon_threadsafe(progress.report, f"{count}/{total} files", percent)

        def stop() -> bool:
            return cancelled.is_set() or self.stopping.is_set()

        scan = asyncio.ensure_future(asyncio.to_thread(index.scan, report, stop))
        try:
            await progress.begin(index.root.name)
            progress.on_cancel(cancelled.set)
            await scan
            # requests slice from the whole index from now on; warming only spares later
            # ones some work, so it gives way to any request (a one-shot `edit`'s would
            # share the interpreter with it): a request warms what it needs itself
            done.set()
            if not self.requests_running:
                ws = Workspace(index.root, self.documents)
                await asyncio.to_thread(
                    warm, index, ws, lambda: stop() or self.requests_running > 0
                )
            await asyncio.to_thread(settle)
        except Exception:  # a bug here must not take the server down
            log.exception("indexing %s failed", index.root)
        finally:
            done.set()
        progress.end("cancelled" if cancelled.is_set() else f"{len(index.files)} files")

    async def wait_for_index(self, ws: Workspace, report: Callable[[str], None]) -> None:
        """Let a request that arrives while its workspace is being indexed wait for
        the index (bounded), so its context is not sliced from half a workspace."""
        done = self.index_done.get(ws.root)
        if done is None or done.is_set():
            return
        report("waiting for the workspace index")
        try:
            await asyncio.wait_for(done.wait(), INDEX_WAIT_SECONDS)
        except TimeoutError:
            log.info("index of %s not ready after %ss; slicing anyway", ws.root, INDEX_WAIT_SECONDS)

    # -- verification --------------------------------------------------------

    def pool_for(self, root: Path) -> ShadowPool | None:
        """The root's warm shadows; the first call creates them and warms them in the
        background. None when the root is not a dune project, dune is missing, or
        `verify.shadows` is 0; a root that was no dune project is looked at again (a
        `dune-project` may have been created since: `dune init` in an open folder)."""
        has_project = (root / "dune-project").is_file()
        if root in self.pools and (self.pools[root] is not None or not has_project):
            return self.pools[root]
        if root in self.pools and root in self._tried_dune:
            return None  # a dune project, but dune is missing or the slots are taken
        pool: ShadowPool | None = None
        v = self.settings.verify
        if v.shadows > 0 and has_project:
            self._tried_dune.add(root)
            if shutil.which("dune") is None:
                log.warning("dune is not on PATH: candidates are checked module by module")
            else:
                try:
                    pool = ShadowPool(
                        root, v.shadows, lambda: self.buffers_under(root), profile=v.profile
                    )
                except (PoolBusy, OSError) as exc:
                    log.warning("no shadow builds for %s: %s", root, exc)
        self.pools[root] = pool
        if pool is not None:
            self.spawn(self._warm(pool))
        return pool

    def retire_pools(self) -> None:
        """`verify.shadows` changed: each old pool closes once the checks under way in it
        are done, then the project gets a new one (warming in the background)."""
        old, self.pools = self.pools, {}
        self._tried_dune.clear()
        for root, pool in old.items():
            if pool is None:
                self.pool_for(root)
            else:
                self.retiring.add(pool)
                self.spawn(self._retire(root, pool))

    async def _retire(self, root: Path, pool: ShadowPool) -> None:
        try:
            await pool.drain()
        finally:
            pool.close()
            self.retiring.discard(pool)
        if root not in self.pools and not self.stopping.is_set():
            self.pool_for(root)

    def buffers_under(self, root: Path) -> dict[str, str]:
        """The open buffers under `root`, by relative path."""
        out: dict[str, str] = {}
        for doc in self.documents:
            path = uri_to_path(doc.uri)
            if path is not None and path.is_relative_to(root):
                out[path.relative_to(root).as_posix()] = doc.text
        return out

    async def _warm(self, pool: ShadowPool) -> None:
        """Bring every shadow of a project to a built state, with `$/progress`."""
        progress = Progress(self.lsp, "ocaml-ai: warming the build")
        await progress.begin(pool.root.name)
        task = asyncio.current_task()

        def cancel() -> None:
            if task is not None:
                task.cancel()

        progress.on_cancel(cancel)

        def report(done: int, total: int) -> None:
            progress.report(f"{done}/{total} shadow builds", done * 100 // max(total, 1))

        try:
            runs = await pool.warm(self.settings.verify.timeout, report)
        except asyncio.CancelledError:
            if not self.stopping.is_set():  # at exit the editor is gone
                progress.end("cancelled")
            raise
        except Exception:  # a bug here must not take the server down
            log.exception("warming the shadows of %s failed", pool.root)
            progress.end("failed")
            return
        if self.stopping.is_set():
            return
        built = all(run.code == 0 for run in runs)
        progress.end("ready" if built else "the project does not build yet")

    def changed(self, uri: str) -> None:
        """A file changed (buffer or disk): the shadows holding it sync it before their
        next check."""
        path = uri_to_path(uri)
        if path is None:
            return
        for root, pool in self.pools.items():
            if pool is not None and path.is_relative_to(root):
                pool.changed(path.relative_to(root).as_posix())

    def checker_for(self, ws: Workspace) -> Checker | None:
        """How this workspace's candidates are type-checked: in a warm shadow of the
        dune project, else module by module; None when `verify.shadows` is 0."""
        v = self.settings.verify
        if v.shadows == 0:
            return None
        pool = self.pool_for(ws.root)
        if pool is not None:
            return lambda files: pool.check(files, v.timeout, v.tests)

        async def alone(files: Mapping[str, str | None]) -> Verification:
            read = disk_reader(ws.root, self.buffers_under(ws.root))
            return await asyncio.to_thread(self.single.check, files, read, v.timeout)

        return alone

    # -- the end -------------------------------------------------------------

    def close(self) -> None:
        """At shutdown: stop recording, kill the shadows' builds, write the queued
        metrics rows (so exiting waits for no build)."""
        self.stopping.set()
        for recorder, stop, _ in self.recorders.values():
            stop.set()
            recorder.close()  # at exit: its dune is killed, the snapshot under way lost
        for pool in [*self.pools.values(), *self.retiring]:
            if pool is not None:
                pool.close()  # kills dune, so exiting does not wait for a build
        if self._metrics is not None:
            self._metrics.close(timeout=2.0)  # the queued rows are written
