"""The language server: LSP messages wired to the pipeline, nothing more.

Handlers are a few lines each; the work is in `pipeline`, `code_actions`,
`documents` and `config`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Coroutine, Generator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method

from . import __version__
from .code_actions import COMMAND, client_resolves_edit, code_actions
from .config import (
    ModelSettings,
    Settings,
    SettingsError,
    SettingsLayers,
    api_key,
    client_section,
    read_config_file,
)
from .context.index import WorkspaceIndex, settle
from .context.model import Context
from .context.render import explain
from .context.slicer import warm
from .diagnostics import diagnostics_by_uri
from .documents import DocumentStore
from .instructions import find_instructions
from .journal import recover_roots
from .metrics.store import GenerationRecord, MetricsStore, default_db_path, workspace_hash
from .outcomes import OutcomeTracker
from .paths import is_inside
from .pipeline import (
    STAGES,
    Checker,
    EditorSupport,
    GenerationError,
    generate,
    prepare,
    stale_files,
)
from .positions import Encoding
from .progress import Progress
from .providers import ManagedProvider, make_provider
from .request import GenerateRequest, GenerateResult, RequestError, parse_request
from .routing import route
from .snapshots.recorder import Recorder
from .uris import uri_to_path
from .verify.pool import PoolBusy, ShadowPool
from .verify.result import TIMEOUT, CheckError, Verification
from .verify.single import SingleFileChecker, disk_reader
from .workspace import Workspace, find_root, is_project

log = logging.getLogger(__name__)

CONFIG_SECTION = "ocaml-ai"
CONTEXT_COMMAND = "ocaml-ai.context"
FEEDBACK_COMMAND = "ocaml-ai.feedback"
#: Providers kept (one per arm and fallback in use); the oldest beyond are closed.
MAX_PROVIDERS = 8
#: How long a request waits for its workspace's first index before slicing anyway.
INDEX_WAIT_SECONDS = 10.0
#: Files whose changes the index follows (registered with the client when it can).
WATCHED_GLOBS = ("**/*.ml", "**/*.mli", "**/dune")


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


class OcamlAiServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            "ocaml-ai-ls",
            __version__,
            protocol_cls=OcamlAiProtocol,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
        )
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
        self._diagnosing: dict[Path, asyncio.Future[None]] = {}
        self._diagnose_again: set[Path] = set()

    @property
    def lsp(self) -> OcamlAiProtocol:
        assert isinstance(self.protocol, OcamlAiProtocol)
        return self.protocol

    # -- settings ---------------------------------------------------------

    def show(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

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

    def sync_recorders(self) -> None:
        """Record snapshots of every folder while `snapshots.enabled` (restarted when the
        snapshot settings change); stop them when it is off."""
        for recorder, stop, running in self.recorders.values():
            stop.set()
            self.spawn(self._close_recorder(recorder, running))
        self.recorders = {}
        if not self.settings.snapshots.enabled or self.stopping.is_set():
            return
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

    def record(self, result: GenerateResult, ws: Workspace) -> None:
        """One metrics row for a generation; never fails the generation."""
        store = self.metrics()
        if store is None or not result.id:
            return
        t = result.timings
        best = result.best
        keep = store.store_prompts
        try:
            store.record(
                GenerationRecord(
                    request_id=result.id,
                    time=time.time(),
                    workspace=workspace_hash(ws.root),
                    provider=result.provider,
                    model=result.model,
                    arm=result.arm,
                    strategy=result.strategy,
                    prompt_tokens=result.prompt_tokens,
                    completion_tokens=result.completion_tokens,
                    context_ms=t.get("context_ms"),
                    first_token_ms=t.get("first_token_ms"),
                    model_ms=t.get("model_ms"),
                    parse_ms=t.get("parse_ms"),
                    apply_ms=t.get("apply_ms"),
                    verify_ms=t.get("verify_ms"),
                    total_ms=t.get("total_ms"),
                    candidates=len(result.candidates) + len(result.rejected),
                    applied_candidates=len(result.candidates),
                    best_status=best.verification.status if best is not None else None,
                    repair_rounds=result.repair_rounds,
                    error=result.error,
                    prompt=json.dumps(result.prompt) if keep else None,
                    answers=json.dumps(result.answers) if keep else None,
                )
            )
        except Exception:  # a metrics bug must not cost the user the edit
            log.exception("recording generation %s failed", result.id)

    def report_outcome(self, request_id: str, applied: bool | None, accepted: bool | None) -> None:
        store = self.metrics()
        if store is not None:
            store.outcome(request_id, applied=applied, accepted=accepted)

    def current_text(
        self, params: types.DidSaveTextDocumentParams | types.DidCloseTextDocumentParams
    ) -> str | None:
        """The document's text as the editor has it (the buffer, else the disk)."""
        doc = self.documents.get(params.text_document.uri)
        if doc is not None:
            return doc.text
        path = uri_to_path(params.text_document.uri)
        try:
            return path.read_text(encoding="utf-8") if path is not None else None
        except (OSError, UnicodeDecodeError):
            return None

    def follow(self, result: GenerateResult, req: GenerateRequest, applied: bool) -> None:
        """Watch the request's document for the edit's outcome (kept, undone, unused)."""
        best = result.best
        if best is None or not result.id:
            return
        change = next((c for c in best.changes if c.uri == req.uri), best.changes[0])
        self.outcomes.watch(result.id, change.uri, best.diff, change.rel, applied)

    # -- requests ----------------------------------------------------------

    def support(self) -> EditorSupport:
        caps = self.client_capabilities
        ws_edit = caps.workspace.workspace_edit if caps.workspace else None
        ops = (ws_edit.resource_operations or []) if ws_edit else []
        return EditorSupport(
            encoding=self.documents.encoding,
            # resource operations exist only in documentChanges, so a client that
            # lists them handles documentChanges even if it does not say so (Neovim)
            document_changes=bool(ws_edit and (ws_edit.document_changes or ops)),
            create_files=types.ResourceOperationKind.Create in ops,
        )

    def workspace_for(self, uri: str) -> Workspace:
        path = uri_to_path(uri)
        if path is None:
            raise RequestError(f"{uri} is not a file URI")
        root = find_root(path, self.folders)
        self.index_for(root)  # the first request on a root starts indexing it
        return Workspace(root, self.documents)

    # -- the context index -------------------------------------------------

    def index_for(self, root: Path) -> WorkspaceIndex:
        """The root's index; the first call starts indexing it in the background."""
        index = self.indexes.get(root)
        if index is None:
            index = self.indexes[root] = WorkspaceIndex(root, self.documents)
            if root not in self.folders and not is_project(root):
                # a stray file's directory (`/etc`, a home directory): not a project to
                # scan; its files are still read on demand when a request names them
                log.info("not indexing %s: neither a workspace folder nor a project", root)
                return index
            self.index_done[root] = asyncio.Event()  # before the task: requests wait on it
            self.spawn(self.build_index(index))
        return index

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
        """Run background work, keeping a reference so it is not collected mid-way."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def index_holding(self, uri: str) -> tuple[Path, WorkspaceIndex] | None:
        """A file URI's path and the innermost existing index whose root holds it."""
        path = uri_to_path(uri)
        if path is None:
            return None
        holding = [i for r, i in self.indexes.items() if is_inside(path, r)]
        return (path, max(holding, key=lambda i: len(i.root.parts))) if holding else None

    async def build_index(self, index: WorkspaceIndex) -> None:
        """Index every source file in a thread, with cancellable `$/progress`.

        The scan starts at once; the progress is created beside it (a client
        may take its time to answer `window/workDoneProgress/create`).
        """
        done = self.index_done.setdefault(index.root, asyncio.Event())
        progress = Progress(self, "ocaml-ai: indexing")
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
            ws = Workspace(index.root, self.documents)
            await asyncio.to_thread(warm, index, ws, stop)
            await asyncio.to_thread(settle)
        except Exception:  # a bug here must not take the server down
            log.exception("indexing %s failed", index.root)
        finally:
            done.set()
        progress.end("cancelled" if cancelled.is_set() else f"{len(index.files)} files")

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
            self.spawn(self.warm(pool))
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

    async def warm(self, pool: ShadowPool) -> None:
        """Bring every shadow of a project to a built state, with `$/progress`."""
        progress = Progress(self, "ocaml-ai: warming the build")
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

    def diagnose_soon(self, root: Path) -> None:
        """Type-check the project as it is (after a save) and publish the errors; a save
        during a check asks for one more check after it."""
        if not self.settings.verify.diagnostics or self.pool_for(root) is None:
            return
        running = self._diagnosing.get(root)
        if running is not None and not running.done():
            self._diagnose_again.add(root)
            return
        self._diagnosing[root] = self.spawn(self.diagnose(root))

    async def diagnose(self, root: Path) -> None:
        pool = self.pools.get(root)
        while pool is not None:
            self._diagnose_again.discard(root)
            try:
                found = await pool.check({}, self.settings.verify.timeout, False)
            except Exception:
                log.exception("checking %s after a save failed", root)
                return
            if found.status != TIMEOUT:
                self.publish(root, found.errors)
            if root not in self._diagnose_again:
                return

    def publish(self, root: Path, errors: Sequence[CheckError]) -> None:
        """Publish the errors as our diagnostics; clear the files that no longer have any."""
        ws = Workspace(root, self.documents)

        def read(path: Path) -> str | None:
            found = ws.read(path)
            return found.text if found is not None else None

        by_uri = diagnostics_by_uri(errors, root, read, self.documents.encoding)
        for uri in self.published.get(root, set()) - by_uri.keys():
            by_uri[uri] = []
        for uri, diagnostics in by_uri.items():
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics)
            )
        self.published[root] = {uri for uri, found in by_uri.items() if found}

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

    async def run_generation(self, req: GenerateRequest, title: str) -> GenerateResult:
        """Run the pipeline with progress; a cancelled progress gives a cancelled result."""
        ws = self.workspace_for(req.uri)
        progress = Progress(self, title)
        await progress.begin(STAGES[0])

        chosen = route(self.settings)
        settings = replace(self.settings, model=chosen.model)

        async def run() -> GenerateResult:
            await self.wait_for_index(ws, progress.report)
            return await generate(
                req,
                ws,
                self.provider(chosen.model),
                settings,
                self.support(),
                progress.report,
                self.checker_for(ws),
                self.index_for(ws.root),
            )

        job = asyncio.ensure_future(run())

        def cancel_job() -> None:
            job.cancel()

        progress.on_cancel(cancel_job)
        try:
            result = await job
        except asyncio.CancelledError:
            task = asyncio.current_task()
            progress.end("cancelled")
            if task is not None and task.cancelling():
                job.cancel()
                raise  # $/cancelRequest: LSP answers RequestCancelled
            return GenerateResult(id="", cancelled=True, error="cancelled")
        result.arm = chosen.arm
        if req.apply and result.best is not None:
            progress.report("applying")
            await self.apply(result, ws, req.instruction)
        progress.end(result.failure() if result.best is None else "done")
        self.record(result, ws)
        if req.apply:
            self.report_outcome(result.id, result.applied, None)
        if result.applied or not req.apply:  # offered edits: the editor may apply them
            self.follow(result, req, result.applied)
        return result

    async def apply(self, result: GenerateResult, ws: Workspace, instruction: str) -> None:
        """Send the best candidate with `workspace/applyEdit`, unless a file moved on."""
        best = result.best
        assert best is not None
        stale = stale_files(best.changes, ws)
        if stale:
            result.error = (
                f"{', '.join(stale)} changed while the edit was being made; nothing was applied"
            )
            return
        answer = await self.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=best.edit, label=f"AI: {instruction[:60]}")
        )
        result.applied = bool(answer.applied)
        if not answer.applied:
            result.error = "the editor did not apply the edit" + (
                f": {answer.failure_reason}" if answer.failure_reason else ""
            )


def create_server() -> OcamlAiServer:
    """A server with every feature registered (a function, so tests can make many)."""
    server = OcamlAiServer()

    @server.feature(types.INITIALIZE)
    def initialize(ls: OcamlAiServer, params: types.InitializeParams) -> None:
        ls.documents.encoding = Encoding.parse(ls.workspace.position_encoding)
        folders = [uri_to_path(f.uri) for f in params.workspace_folders or []]
        if not folders and params.root_uri:
            folders = [uri_to_path(params.root_uri)]
        elif not folders and params.root_path:
            folders = [Path(params.root_path)]
        ls.folders = [f for f in folders if f is not None]
        layers = SettingsLayers(init_options=client_section(params.initialization_options))
        try:
            layers.file = read_config_file(ls.folders[0] if ls.folders else None)
        except SettingsError as exc:
            ls.startup_errors.append(str(exc))
        ls.startup_errors.extend(ls.adopt(layers, None))

    @server.feature(types.INITIALIZED)
    async def initialized(ls: OcamlAiServer, params: types.InitializedParams) -> None:
        for error in ls.startup_errors:
            ls.show(f"ocaml-ai-ls settings: {error}")
        for done in recover_roots(ls.folders):  # an `edit --apply` killed half way, first
            kind = types.MessageType.Warning if done.settled else types.MessageType.Error
            ls.show(f"ocaml-ai-ls: {done.message}", kind)
        for folder in ls.folders:
            ls.index_for(folder)
            ls.pool_for(folder)
        ls.started = True
        ls.sync_recorders()
        caps = ls.client_capabilities.workspace
        watched = caps.did_change_watched_files if caps else None
        if watched and watched.dynamic_registration:
            await register_watchers(ls)
        if caps and caps.configuration:
            await pull_configuration(ls)

    async def register_watchers(ls: OcamlAiServer) -> None:
        options = types.DidChangeWatchedFilesRegistrationOptions(
            watchers=[types.FileSystemWatcher(glob_pattern=g) for g in WATCHED_GLOBS]
        )
        registration = types.Registration(
            id="ocaml-ai-watched-files",
            method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
            register_options=options,
        )
        try:
            await asyncio.wait_for(
                ls.client_register_capability_async(
                    types.RegistrationParams(registrations=[registration])
                ),
                5,
            )
        except Exception as exc:
            log.info("client/registerCapability failed: %s", exc)

    async def pull_configuration(ls: OcamlAiServer) -> None:
        try:
            items = await asyncio.wait_for(
                ls.workspace_configuration_async(
                    types.ConfigurationParams(
                        items=[types.ConfigurationItem(section=CONFIG_SECTION)]
                    )
                ),
                5,
            )
        except Exception as exc:
            log.info("workspace/configuration failed: %s", exc)
            return
        if items and isinstance(items[0], dict):
            update_client_settings(ls, items[0])

    def update_client_settings(ls: OcamlAiServer, section: dict[str, Any]) -> None:
        errors = ls.adopt(replace(ls.layers, client=section), "workspace configuration")
        for error in errors:
            if error.startswith("workspace configuration"):
                ls.show(f"ocaml-ai-ls settings: {error} (keeping the previous settings)")

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: OcamlAiServer, params: types.DidChangeConfigurationParams
    ) -> None:
        section = client_section(params.settings)
        if section:
            update_client_settings(ls, section)
        elif ls.client_capabilities.workspace and ls.client_capabilities.workspace.configuration:
            await pull_configuration(ls)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: OcamlAiServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = ls.documents.open(params.text_document)
        path = uri_to_path(doc.uri)
        if path is not None and doc.kind is not None:
            ls.index_for(find_root(path, ls.folders)).update_document(doc)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: OcamlAiServer, params: types.DidChangeTextDocumentParams) -> None:
        doc = ls.documents.change(params)
        held = ls.index_holding(params.text_document.uri)
        if doc is not None and held is not None:
            held[1].update_document(doc)
        ls.changed(params.text_document.uri)
        if doc is not None and ls.outcomes.watching(doc.uri, offered_only=True):
            ls.outcomes.changed(doc.uri, doc.text)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: OcamlAiServer, params: types.DidSaveTextDocumentParams) -> None:
        doc = ls.documents.get(params.text_document.uri)
        held = ls.index_holding(params.text_document.uri)
        if held is not None:
            path, index = held
            if doc is not None:
                index.update_document(doc)
            else:
                index.changed(path)
        ls.changed(params.text_document.uri)
        if ls.outcomes.watching(params.text_document.uri):
            ls.outcomes.settled(params.text_document.uri, ls.current_text(params), closed=False)
        saved = uri_to_path(params.text_document.uri)
        if saved is not None:
            ls.diagnose_soon(find_root(saved, ls.folders))

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: OcamlAiServer, params: types.DidCloseTextDocumentParams) -> None:
        if ls.outcomes.watching(params.text_document.uri):
            ls.outcomes.settled(params.text_document.uri, ls.current_text(params), closed=True)
        ls.documents.close(params.text_document.uri)
        held = ls.index_holding(params.text_document.uri)
        if held is not None:
            held[1].changed(held[0])  # the disk's text counts again
        ls.changed(params.text_document.uri)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(
        ls: OcamlAiServer, params: types.DidChangeWatchedFilesParams
    ) -> None:
        for event in params.changes:
            held = ls.index_holding(event.uri)
            if ls.documents.get(event.uri) is not None:
                continue  # an open buffer is fresher than the disk
            ls.changed(event.uri)
            if held is None:
                continue
            path, index = held
            if event.type == types.FileChangeType.Deleted:
                index.removed(path)
            else:
                index.changed(path)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: OcamlAiServer, params: None) -> None:
        ls.stopping.set()
        for recorder, stop, _ in ls.recorders.values():
            stop.set()
            recorder.close()  # at exit: its dune is killed, the snapshot under way lost
        for pool in [*ls.pools.values(), *ls.retiring]:
            if pool is not None:
                pool.close()  # kills dune, so exiting does not wait for a build
        if ls._metrics is not None:
            ls._metrics.close(timeout=2.0)  # the queued rows are written

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[
                types.CodeActionKind.RefactorRewrite,
                types.CodeActionKind.QuickFix,
            ],
            resolve_provider=True,
        ),
    )
    def code_action(
        ls: OcamlAiServer, params: types.CodeActionParams
    ) -> list[types.CodeAction] | None:
        doc = ls.documents.get(params.text_document.uri)
        if doc is None:
            return None
        return code_actions(doc, params, client_resolves_edit(ls.client_capabilities)) or None

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def code_action_resolve(ls: OcamlAiServer, action: types.CodeAction) -> types.CodeAction:
        try:
            req = parse_request(action.data)
            version = action.data.get("version") if isinstance(action.data, dict) else None
            req = locate_again(ls, req, version)
        except RequestError as exc:
            ls.show(f"AI: {exc}")
            return action
        result = await ls.run_generation(req, action.title)
        if result.best is None:
            ls.show(f"{action.title}: {result.failure()}")
            return action
        action.edit = result.best.edit
        return action

    def locate_again(ls: OcamlAiServer, req: GenerateRequest, version: object) -> GenerateRequest:
        """Find a resolved action's instruction comment again if the buffer moved on."""
        doc = ls.documents.get(req.uri)
        if req.comment is None or doc is None or doc.version == version:
            return req
        original = req.comment
        for found in find_instructions(doc, original.start.line, original.end.line):
            if found.text == req.instruction:
                rng = doc.index.range(found.start_byte, found.end_byte)
                return replace(req, range=rng, comment=rng)
        raise RequestError("the instruction comment is no longer there; ask again")

    @server.command(COMMAND)
    async def generate_command(ls: OcamlAiServer, *args: Any) -> dict[str, Any]:
        try:
            req = parse_request(list(args))
        except RequestError as exc:
            raise JsonRpcInvalidParams(f"{COMMAND}: {exc}") from None
        msg_id = ls.lsp.msg_id
        task = asyncio.current_task()
        if msg_id is not None and task is not None:
            ls.lsp.cancellable[msg_id] = task
        try:
            result = await ls.run_generation(req, f"AI: {req.instruction[:50]}")
        finally:
            if msg_id is not None:
                ls.lsp.cancellable.pop(msg_id, None)
        if req.apply and result.error and not result.cancelled:
            ls.show(f"AI: {result.error}")
        return result.to_json()

    @server.command(FEEDBACK_COMMAND)
    def feedback_command(ls: OcamlAiServer, *args: Any) -> dict[str, Any]:
        """`{id, accepted}`: the user kept (or rejected) the edit of generation `id`."""
        arg = args[0] if len(args) == 1 else None
        if not isinstance(arg, dict):
            raise JsonRpcInvalidParams(f"{FEEDBACK_COMMAND} takes one object {{id, accepted}}")
        request_id, accepted = arg.get("id"), arg.get("accepted")
        if not isinstance(request_id, str) or not request_id:
            raise JsonRpcInvalidParams(f"{FEEDBACK_COMMAND}: id must be a generation's id")
        if not isinstance(accepted, bool):
            raise JsonRpcInvalidParams(f"{FEEDBACK_COMMAND}: accepted must be true or false")
        ls.outcomes.feedback(request_id)
        ls.report_outcome(request_id, None, accepted)
        return {"id": request_id, "accepted": accepted}

    @server.command(CONTEXT_COMMAND)
    async def context_command(ls: OcamlAiServer, *args: Any) -> dict[str, Any]:
        try:
            req = parse_request(list(args), instruction_required=False, command=CONTEXT_COMMAND)
            ws = ls.workspace_for(req.uri)
            await ls.wait_for_index(ws, lambda message: None)
            prep = prepare(req, ws, ls.settings, ls.documents.encoding, ls.index_for(ws.root))
        except (RequestError, GenerationError) as exc:
            raise JsonRpcInvalidParams(f"{CONTEXT_COMMAND}: {exc}") from None
        context: Context = prep.context
        found = context.to_json()
        arg = args[0] if len(args) == 1 else None
        if isinstance(arg, dict) and arg.get("explain") is True:
            found["explain"] = explain(context)
        return found

    return server
