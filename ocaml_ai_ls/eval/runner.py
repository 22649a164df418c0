"""Runs tasks through the editor's pipeline, one attempt per (task, arm, sample).

Each attempt is `pipeline.generate` exactly as `ocaml-ai.generate` runs it (context,
prompt, model, parse, apply, verification, repair rounds), on a working copy of the
task's project in its "before" state under `<out>/work/` (the task's project is only
read), type-checked in a shadow of that copy. Samples are independent attempts of
one candidate each, so pass@k counts k honest tries and not one call's k answers.
Every finished attempt is appended to `<out>/attempts.jsonl` at once (flushed and
synced), so a rerun skips what is done and a kill loses at most the attempts in
flight.

Of the settings, the run takes the model, arms, fallback, context and repair rounds
as they are; it overrides what belongs to the task: one candidate per model call
(`generate.candidates`), tests when the task's `checks.tests` says so (`verify.tests`),
and a shadow per attempt that can run at once (`verify.shadows`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TextIO

from lsprotocol import types

from ..config import (
    CONFIG_FILE,
    ModelSettings,
    Settings,
    SettingsError,
    SettingsLayers,
    api_key,
    read_config_file,
    read_config_path,
)
from ..context.index import WorkspaceIndex
from ..documents import DocumentStore
from ..paths import SKIPPED_DIRS, is_inside
from ..pipeline import Checker, EditorSupport, generate
from ..providers import ManagedProvider, make_provider
from ..providers.base import Provider
from ..request import Candidate, GenerateRequest, GenerateResult
from ..uris import path_to_uri
from ..verify.pool import ShadowPool
from ..verify.result import OK, PARSE_ERROR, TEST_FAILURE, WARNING, Verification
from ..verify.single import SingleFileChecker, disk_reader
from ..workspace import Workspace
from .replay import AnswerKey, CallLog, ReplayProvider, append_lines, load_answers
from .tasks import Task

if TYPE_CHECKING:
    from ..verify.ray_workers import RayWorkers

log = logging.getLogger(__name__)

ATTEMPTS_FILE = "attempts.jsonl"
ANSWERS_FILE = "answers.jsonl"
#: The arm name when the settings configure no `routing.arms`.
DEFAULT_ARM = "default"
#: (task id, arm, sample): what a rerun skips when it is in the attempts file.
AttemptKey = tuple[str, str, int]


class EvalError(Exception):
    """Bad input for a run (settings, arms, a task's files); the message says which."""


@dataclass(frozen=True)
class ArmSpec:
    """An arm of the evaluation: a name and the model settings it runs with."""

    name: str
    model: ModelSettings


@dataclass
class EvalOptions:
    tasks: Sequence[Task]
    out: Path
    settings: Settings
    arms: Sequence[ArmSpec]
    samples: int = 1
    workers: int = 2
    replay: Path | None = None
    record_answers: bool = False
    #: Start at most this many new attempts (None: all), e.g. to try a task set.
    max_attempts: int | None = None
    #: Rerun attempts whose record has an error (a model that was down, ...).
    retry_errors: bool = False
    #: Seconds the attempts in flight may take after a first Ctrl-C before they are
    #: cancelled.
    grace: float = 30.0
    #: Check on Ray actors (`auto` or a cluster's address), `workers` of them.
    ray: str | None = None


# -- settings and arms -----------------------------------------------------------


def load_settings(config: Path | None, tasks_file: Path, tasks: Sequence[Task]) -> Settings:
    """The run's settings: `config` (an `.ocaml-ai.toml`), else the `.ocaml-ai.toml`
    beside the tasks file, else the first task's project's, over the defaults, with
    the environment (`OCAML_AI_BASE_URL`, `OCAML_AI_MODEL`) on top."""
    try:
        if config is not None:
            layer = read_config_path(config)
        elif (tasks_file.parent / CONFIG_FILE).is_file():
            layer = read_config_file(tasks_file.parent)
        else:
            layer = read_config_file(tasks[0].project) if tasks else {}
    except SettingsError as exc:
        raise EvalError(str(exc)) from None
    settings, errors = SettingsLayers(file=layer).build()
    if errors:
        raise EvalError("; ".join(errors))
    return settings


def select_arms(settings: Settings, names: Sequence[str] | None) -> list[ArmSpec]:
    """The arms by name from `routing.arms` (all of them by default); without arms,
    one arm "default" running `[model]`."""
    configured = [ArmSpec(a.name, a.model_settings(settings.model)) for a in settings.routing.arms]
    if not configured:
        configured = [ArmSpec(DEFAULT_ARM, settings.model)]
    if not names:
        return configured
    by_name = {a.name: a for a in configured}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise EvalError(f"unknown arm(s) {', '.join(unknown)}; configured: {', '.join(by_name)}")
    return [by_name[n] for n in dict.fromkeys(names)]


# -- the attempts file -------------------------------------------------------------


def attempt_key(record: Mapping[str, Any]) -> AttemptKey:
    return (str(record["task"]), str(record["arm"]), int(record["sample"]))


def read_attempts(path: Path) -> list[dict[str, Any]]:
    """The attempts recorded so far, one per key (the last wins). A line cut by a kill
    is cut off the file, so the next record starts on a line of its own."""
    if not path.exists():
        return []
    data = path.read_bytes()
    whole = data.rfind(b"\n") + 1
    if whole < len(data):
        with path.open("r+b") as fh:
            fh.truncate(whole)
    out: dict[AttemptKey, dict[str, Any]] = {}
    for line in data[:whole].decode("utf-8", "replace").splitlines():
        try:
            record = json.loads(line)
            out[attempt_key(record)] = record
        except (ValueError, KeyError, TypeError):
            log.warning("%s: skipping a line that is not an attempt: %.80s", path, line)
    return list(out.values())


# -- judging one result ------------------------------------------------------------


def _judge(best: Candidate | None, task: Task) -> tuple[bool, bool, bool | None, bool]:
    """(parsed, typechecked, tests, passed) of a best candidate."""
    status = best.verification.status if best is not None else None
    parsed = best is not None and status != PARSE_ERROR
    typechecked = status in (OK, WARNING, TEST_FAILURE)  # warnings only: it type-checks
    tests = (status == OK) if task.checks.tests else None
    # a task that does not ask for type-checking passes on a parsing edit
    first = typechecked if task.checks.typecheck else parsed
    return parsed, typechecked, tests, first and tests is not False


def attempt_record(
    result: GenerateResult,
    task: Task,
    arm: ArmSpec,
    sample: int,
    *,
    replayed: bool,
    model_ms: float | None,
) -> dict[str, Any]:
    """The attempt's line in `attempts.jsonl` (the contract `report.py` reads)."""
    best = result.best
    parsed, typechecked, tests, passed = _judge(best, task)
    first_round = [c for c in result.candidates if c.round == 0]  # still ranked
    *_, passed_first = _judge(first_round[0] if first_round else None, task)
    t = result.timings

    def ms(key: str) -> float | None:
        return round(t[key], 3) if key in t else None

    return {
        "task": task.id,
        "arm": arm.name,
        "sample": sample,
        "model": result.model or arm.model.model,
        "provider": arm.model.provider,
        "strategy": arm.model.strategy,
        "replayed": replayed,
        "applied": bool(result.candidates),
        "parsed": parsed,
        "typechecked": typechecked,
        "tests": tests,
        "passed": passed,
        "passed_before_repair": passed_first,
        "repair_round": best.round if best is not None else None,
        "status": best.verification.status if best is not None else None,
        "ms": {
            "context": ms("context_ms"),
            "first_token": ms("first_token_ms"),
            "model": round(model_ms, 3) if model_ms is not None else ms("model_ms"),
            "parse": ms("parse_ms"),
            "apply": ms("apply_ms"),
            # the compiler's time in every round (repairs included)
            "verify": ms("check_ms"),
            "total": ms("total_ms"),
        },
        "tokens": {"prompt": result.prompt_tokens, "completion": result.completion_tokens},
        "error": result.error,
        "time": time.time(),
    }


def failed_record(
    task: Task, arm: ArmSpec, sample: int, error: str, replayed: bool = False
) -> dict[str, Any]:
    """An attempt the harness could not run (a broken working copy, a shadow that
    failed): it counts as failed and says why."""
    result = GenerateResult(id="", error=error)
    return attempt_record(result, task, arm, sample, replayed=replayed, model_ms=None)


# -- a task's before state -----------------------------------------------------------


def _slug(task_id: str) -> str:
    digest = hashlib.blake2b(task_id.encode(), digest_size=4).hexdigest()
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', task_id)[:48]}-{digest}"


def make_working_copy(task: Task, dest: Path) -> Path:
    """A fresh copy of the task's project (build and VCS directories left out) with
    the task's overrides written (None: the file is absent before)."""
    if not task.project.is_dir():
        raise EvalError(f"task {task.id}: project {task.project} is not a directory")
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(task.project, dest, ignore=shutil.ignore_patterns(*SKIPPED_DIRS))
    for rel, text in task.files.items():
        target = dest / rel
        if Path(rel).is_absolute() or not is_inside(target, dest):
            raise EvalError(f"task {task.id}: file {rel!r} is outside the project")
        if text is None:
            target.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    return dest


def request_for(task: Task, root: Path) -> GenerateRequest:
    """The request an editor would send: the instruction at the task's location (by
    default the first overridden `.ml` file, line 0; see `Task.target`)."""
    target = task.target()
    if target is None:
        raise EvalError(f"task {task.id}: no location and no overridden .ml file")
    rel, line, character = target.path, target.line, target.character
    pos = types.Position(line=line, character=character)
    return GenerateRequest(
        uri=path_to_uri(root / rel),
        instruction=task.instruction,
        range=types.Range(start=pos, end=pos),
        candidates=1,
    )


@dataclass
class _TaskState:
    """One task's working copy, its workspace and its checker, while attempts use them."""

    root: Path
    ws: Workspace
    index: WorkspaceIndex
    checker: Checker | None
    pool: ShadowPool | None
    left: int
    #: The working copy's key on the Ray actors (`--ray`), and the actors.
    ray: tuple[RayWorkers, str] | None = None

    def close(self, remove: bool = False) -> None:
        """Stop the shadow; `remove`: the task is done, its copy and shadow go (a large
        task set would otherwise keep a copy of a project per task)."""
        if self.ray is not None and remove:
            workers, key = self.ray
            workers.drop(key)
        if self.pool is not None:
            self.pool.close()
            if remove:
                for shadow in self.pool.shadows:
                    shutil.rmtree(shadow.path.parent, ignore_errors=True)
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)


# -- progress ------------------------------------------------------------------------


@dataclass
class ProgressLine:
    """`[####....] 12/40 attempts, 3 passed` on a terminal (rewritten in place), else a
    plain line now and then."""

    total: int
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    every: float = 5.0
    done: int = 0
    passed: int = 0
    _last: float = 0.0

    def update(self, passed: bool) -> None:
        self.done += 1
        self.passed += passed
        self.show()

    def show(self, force: bool = False) -> None:
        width = 30
        filled = width * self.done // max(self.total, 1)
        text = (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} attempts, "
            f"{self.passed} passed"
        )
        if self.stream.isatty():
            print(f"\r\x1b[K{text}", end="", file=self.stream, flush=True)
            return
        now = time.monotonic()
        if force or self.done == self.total or now - self._last >= self.every:
            self._last = now
            print(f"eval: {text}", file=self.stream, flush=True)

    def finish(self) -> None:
        if self.stream.isatty():
            print(file=self.stream, flush=True)


# -- the run -------------------------------------------------------------------------


@dataclass
class RunSummary:
    attempts: list[dict[str, Any]]
    started: int
    finished: int
    interrupted: bool
    seconds: float


class Runner:
    """One `ocaml-ai-ls eval` run: pending attempts, at most `workers` at once."""

    def __init__(self, opts: EvalOptions, progress: TextIO | None = None) -> None:
        self.opts = opts
        self.out = opts.out.resolve()  # its files become URIs, which cannot be relative
        self.work = self.out / "work"
        self.stopping = asyncio.Event()
        self.progress_stream = progress if progress is not None else sys.stderr
        self._states: dict[str, _TaskState] = {}
        self._state_locks: dict[str, asyncio.Lock] = {}
        self._providers: dict[str, ManagedProvider] = {}
        self._answers: Mapping[AnswerKey, Mapping[str, Any]] = (
            load_answers(opts.replay) if opts.replay is not None else {}
        )
        self._running: set[asyncio.Task[None]] = set()
        self._single = SingleFileChecker()
        self._interrupts = 0
        self._pending: list[tuple[Task, ArmSpec, int]] = []
        self._per_task: Counter[str] = Counter()
        self._replayed = opts.replay is not None
        self._answers_fh: IO[str] | None = None
        #: The Ray actors checking candidates (`opts.ray`), from the start of `run`.
        self._ray: RayWorkers | None = None

    # pending work

    def pending(self, done: Iterable[Mapping[str, Any]]) -> list[tuple[Task, ArmSpec, int]]:
        """The attempts not recorded yet, task by task. Within a task, samples in turn
        and the arms' order rotated per task: the first attempts of a task (which find
        its shadow's caches cold) are not always the same arm's."""
        skip = {attempt_key(r) for r in done if not (self.opts.retry_errors and r.get("error"))}
        arms = list(self.opts.arms)
        out: list[tuple[Task, ArmSpec, int]] = []
        for i, task in enumerate(self.opts.tasks):
            turn = i % len(arms) if arms else 0
            for sample in range(self.opts.samples):
                for arm in arms[turn:] + arms[:turn]:
                    if (task.id, arm.name, sample) not in skip:
                        out.append((task, arm, sample))
        return out

    def selected(self, attempts: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The recorded attempts this run's tasks, arms and samples cover (the report's)."""
        tasks = {t.id for t in self.opts.tasks}
        arms = {a.name for a in self.opts.arms}
        return [
            dict(r)
            for r in attempts
            if r["task"] in tasks and r["arm"] in arms and int(r["sample"]) < self.opts.samples
        ]

    # signals

    def interrupt(self) -> None:
        """First Ctrl-C: start nothing new, let the attempts in flight finish (cancelled
        after the grace period); a second one cancels them at once."""
        self._interrupts += 1
        if self._interrupts == 1:
            self.stopping.set()
            print(
                f"\neval: interrupted; finishing {len(self._running)} attempt(s) in flight "
                f"(at most {self.opts.grace:g} s; Ctrl-C again to cancel them)",
                file=sys.stderr,
                flush=True,
            )
            asyncio.get_running_loop().call_later(self.opts.grace, self._cancel_running)
        else:
            self._cancel_running()

    def _cancel_running(self) -> None:
        for job in list(self._running):
            job.cancel()

    # per task

    async def _state(self, task: Task) -> _TaskState:
        lock = self._state_locks.setdefault(task.id, asyncio.Lock())
        async with lock:
            state = self._states.get(task.id)
            if state is not None:
                return state
            root = await asyncio.to_thread(make_working_copy, task, self.work / _slug(task.id))
            documents = DocumentStore()
            index = WorkspaceIndex(root, documents)
            await asyncio.to_thread(index.scan)
            ws = Workspace(root, documents)
            if self._ray is not None:
                state = await self._ray_state(task, root, ws, index, self._ray)
                self._states[task.id] = state
                return state
            checker, pool = self._checker(task, root)
            state = _TaskState(root, ws, index, checker, pool, self._per_task[task.id])
            if pool is not None:
                # built once before the first attempt, as the editor warms its shadows at
                # start: every attempt (whichever arm comes first) checks in a warm build
                try:
                    await pool.warm(self.opts.settings.verify.timeout, lambda done, total: None)
                except BaseException:
                    state.close()
                    raise
            self._states[task.id] = state
            return state

    async def _ray_state(
        self,
        task: Task,
        root: Path,
        ws: Workspace,
        index: WorkspaceIndex,
        workers: RayWorkers,
    ) -> _TaskState:
        """The task's state when the checks run on Ray actors: the working copy is sent
        to them and warmed on as many as attempts of it can run at once, as the local
        path warms as many shadows."""
        checks = task.checks
        left = self._per_task[task.id]
        if not checks.typecheck and not checks.tests:
            return _TaskState(root, ws, index, None, None, left)
        if not (root / "dune-project").is_file():
            checker, _ = self._checker(task, root)  # module by module, here
            return _TaskState(root, ws, index, checker, None, left)
        verify = self.opts.settings.verify
        key = await asyncio.to_thread(workers.add_project, root, verify.timeout, verify.profile)
        state = _TaskState(root, ws, index, None, None, left, ray=(workers, key))
        try:
            await workers.warm(key, max(1, min(self.opts.workers, left)))
        except BaseException:
            state.close(remove=True)
            raise

        def on_ray(files: Mapping[str, str | None]) -> Awaitable[Verification]:
            return workers.check(key, files, checks.tests)

        state.checker = on_ray
        return state

    def _checker(self, task: Task, root: Path) -> tuple[Checker | None, ShadowPool | None]:
        """Shadows of the working copy (dune), else module by module; None when the task
        asks for neither type-checking nor tests. A shadow per attempt that can run at
        once, so no check waits for another (its time would count as verification)."""
        checks = task.checks
        if not checks.typecheck and not checks.tests:
            return None, None
        timeout = self.opts.settings.verify.timeout
        if (root / "dune-project").is_file() and shutil.which("dune") is not None:
            size = max(1, min(self.opts.workers, self._per_task[task.id]))
            profile = self.opts.settings.verify.profile
            pool = ShadowPool(root, size, cache=self.work / "shadows", profile=profile)

            def in_shadow(files: Mapping[str, str | None]) -> Awaitable[Verification]:
                return pool.check(files, timeout, checks.tests)

            return in_shadow, pool

        async def alone(files: Mapping[str, str | None]) -> Verification:
            read = disk_reader(root, {})
            return await asyncio.to_thread(self._single.check, files, read, timeout)

        return alone, None

    def _release(self, task: Task) -> None:
        state = self._states.get(task.id)
        if state is None:
            return
        state.left -= 1
        if state.left <= 0:
            state.close(remove=True)
            del self._states[task.id]

    def _provider(self, arm: ArmSpec, task: Task, sample: int) -> Provider:
        if self.opts.replay is not None:
            return ReplayProvider(self._answers, task.id, arm.name, sample)
        provider = self._providers.get(arm.name)
        if provider is None:
            s = self.opts.settings
            fallback_key = api_key(s.fallback) if s.fallback is not None else None
            provider = make_provider(arm.model, api_key(arm.model), s.fallback, fallback_key)
            self._providers[arm.name] = provider
        return provider

    # one attempt

    async def attempt(self, task: Task, arm: ArmSpec, sample: int) -> dict[str, Any]:
        try:
            state = await self._state(task)
            req = request_for(task, state.root)
        except (EvalError, OSError) as exc:
            return failed_record(task, arm, sample, f"harness: {exc}", self._replayed)
        calls = CallLog(self._provider(arm, task, sample))
        settings = replace(self.opts.settings, model=arm.model)
        result = await generate(
            req,
            state.ws,
            calls,
            settings,
            EditorSupport(),
            checker=state.checker,
            index=state.index,
        )
        record = attempt_record(
            result,
            task,
            arm,
            sample,
            replayed=self._replayed,
            model_ms=calls.ms if calls.calls else None,
        )
        if self._answers_fh is not None:
            append_lines(self._answers_fh, calls.records(task.id, arm.name, sample))
        return record

    async def run(self) -> RunSummary:
        started_at = time.perf_counter()
        if self.opts.ray is not None:
            from ..verify.ray_workers import RayUnavailable, RayWorkers

            try:
                self._ray = await asyncio.to_thread(
                    RayWorkers, self.opts.ray, max(1, self.opts.workers)
                )
            except RayUnavailable as exc:
                raise EvalError(str(exc)) from None
        self.out.mkdir(parents=True, exist_ok=True)
        attempts_path = self.out / ATTEMPTS_FILE
        done = read_attempts(attempts_path)
        self._pending = pending = self.pending(done)
        if self.opts.max_attempts is not None:
            self._pending = pending = pending[: self.opts.max_attempts]
        self._per_task = Counter(task.id for task, _arm, _sample in pending)
        recorded: dict[AttemptKey, dict[str, Any]] = {attempt_key(r): r for r in done}
        todo = {(t.id, a.name, s) for t, a, s in pending}
        kept = [r for r in self.selected(done) if attempt_key(r) not in todo]
        progress = ProgressLine(len(kept) + len(todo), self.progress_stream)
        progress.done = len(kept)
        progress.passed = sum(bool(r.get("passed")) for r in kept)
        progress.show(force=True)
        if self.opts.record_answers and self.opts.replay is None:
            self._answers_fh = (self.out / ANSWERS_FILE).open("a", encoding="utf-8")
        gate = asyncio.Semaphore(max(1, self.opts.workers))
        loop = asyncio.get_running_loop()
        handled = _add_sigint(loop, self.interrupt)
        started = finished = 0
        try:
            with attempts_path.open("a", encoding="utf-8") as out:

                async def one(task: Task, arm: ArmSpec, sample: int) -> None:
                    nonlocal finished
                    try:
                        try:
                            record = await self.attempt(task, arm, sample)
                        except asyncio.CancelledError:
                            return
                        except Exception as exc:  # a harness bug must not stop the run
                            log.exception("attempt %s/%s/%s failed", task.id, arm.name, sample)
                            record = failed_record(
                                task, arm, sample, f"harness: {exc!r}", self._replayed
                            )
                        append_lines(out, [record])
                        recorded[attempt_key(record)] = record
                        finished += 1
                        progress.update(bool(record["passed"]))
                    finally:
                        self._release(task)
                        gate.release()

                for task, arm, sample in pending:
                    await gate.acquire()
                    if self.stopping.is_set():
                        gate.release()
                        break
                    job = asyncio.ensure_future(one(task, arm, sample))
                    self._running.add(job)
                    job.add_done_callback(self._running.discard)
                    started += 1
                while self._running:
                    await asyncio.wait(set(self._running))
        finally:
            if handled:
                loop.remove_signal_handler(signal.SIGINT)
            progress.finish()
            for state in self._states.values():
                state.close()
            self._states.clear()
            if self._ray is not None:
                await asyncio.to_thread(self._ray.close)
                self._ray = None
            for provider in self._providers.values():
                await provider.aclose()
            if self._answers_fh is not None:
                self._answers_fh.close()
        return RunSummary(
            attempts=self.selected(recorded.values()),
            started=started,
            finished=finished,
            interrupted=self.stopping.is_set(),
            seconds=time.perf_counter() - started_at,
        )


def _add_sigint(loop: asyncio.AbstractEventLoop, handler: Callable[[], None]) -> bool:
    """Handle Ctrl-C in the loop (not on the main thread, or on Windows: not at all)."""
    try:
        loop.add_signal_handler(signal.SIGINT, handler)
    except (NotImplementedError, RuntimeError, ValueError):
        return False
    return True


__all__ = [
    "ANSWERS_FILE",
    "ATTEMPTS_FILE",
    "DEFAULT_ARM",
    "ArmSpec",
    "EvalError",
    "EvalOptions",
    "ProgressLine",
    "RunSummary",
    "Runner",
    "attempt_record",
    "load_settings",
    "make_working_copy",
    "read_attempts",
    "request_for",
    "select_arms",
]
