"""A shadow build: a copy of the user's dune project, outside it, with a warm `_build`.

A candidate is checked by writing its files into the shadow, running
`dune build @check` (then `dune test` when asked) under a timeout, and putting
the shadow's files back, whatever happened: dune killed at the timeout
included. The user's tree is only ever read.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ..ignores import counts, walk_project
from ..paths import cache_dir, is_skipped_dir
from ..source_text import encode, write_source
from .compiler_output import parse_compiler_output
from .result import (
    OK,
    TEST_FAILURE,
    TIMEOUT,
    CheckError,
    Stage,
    Verification,
    compile_status,
)

log = logging.getLogger(__name__)

#: The dune workspace a shadow builds with when the project has none of its own:
#: `-no-keep-locs` leaves source positions out of `.cmi` files, so an edit that only
#: moves lines keeps its module's interface byte-for-byte and dune's cutoff spares
#: every dependent (a one-function check then rebuilds one module, not its users).
#: Type-checking is unchanged; only the "defined at" notes of errors in other
#: modules lose their positions.
SHADOW_WORKSPACE = "(lang dune 2.0)\n(env (_ (flags (:standard -no-keep-locs))))\n"


def cache_root() -> Path:
    """Where shadows live: `$XDG_CACHE_HOME/ocaml-ai-ls/shadows` (never in the workspace)."""
    return cache_dir() / "shadows"


def shadow_dir(root: Path, index: int, cache: Path | None = None) -> Path:
    digest = hashlib.blake2b(str(root).encode(), digest_size=8).hexdigest()
    return (cache or cache_root()) / f"{root.name}-{digest}" / str(index)


@dataclass(frozen=True)
class Run:
    """One dune invocation: exit code (None when killed at the timeout), output, time."""

    code: int | None
    output: str
    ms: float
    #: Not run, or killed, because the shadow was stopped (the server is exiting) or
    #: its check was cancelled.
    stopped: bool = False


def run_dune(
    args: list[str],
    cwd: Path,
    timeout: float,
    on_start: Callable[[subprocess.Popen[str]], None] = lambda proc: None,
) -> Run:
    """Run dune in its own process group, so a timeout kills it and its children."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["dune", *args, "--root", str(cwd)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    on_start(proc)
    try:
        output, _ = proc.communicate(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        code = None
    return Run(code, output or "", (time.perf_counter() - started) * 1000)


class Shadow:
    """One shadow copy of a project root."""

    def __init__(self, root: Path, path: Path, profile: str = "dev") -> None:
        self.root = root
        self.path = path
        #: The dune profile (`--profile`) every build and test runs with.
        self.profile = profile
        self._running: subprocess.Popen[str] | None = None
        #: Set by `stop`: no more dune runs in this shadow.
        self.stopped = False
        #: Set by `interrupt`: no more dune runs until the owner of the shadow clears it.
        self.interrupted = False

    def interrupt(self) -> None:
        """The check under way is not wanted any more (its request was cancelled): kill
        its dune run and refuse the next ones, so the shadow is undone and free at once."""
        self.interrupted = True
        proc = self._running
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        """Kill the dune run in progress, if any, and refuse later ones (server exit)."""
        self.stopped = True
        self.interrupt()

    def _dune(self, args: list[str], timeout: float) -> Run:
        if self.stopped or self.interrupted:
            return Run(None, "", 0.0, stopped=True)

        def started(proc: subprocess.Popen[str]) -> None:
            self._running = proc

        try:
            args = [*args, "--profile", self.profile, *self._workspace()]
            run = run_dune(args, self.path, timeout, started)
        finally:
            self._running = None
        return replace(run, stopped=True) if self.stopped or self.interrupted else run

    def _workspace(self) -> list[str]:
        """`--workspace FILE` (beside the shadow, outside its mirror) unless the project
        has its own `dune-workspace`, whose contexts and profiles must stay as they are."""
        if (self.root / "dune-workspace").exists():
            return []
        path = self.path.with_name(f"{self.path.name}.dune-workspace")
        _write_if_changed(path, SHADOW_WORKSPACE.encode())
        return ["--workspace", str(path)]

    def sync(
        self, overrides: Mapping[str, str] | None = None, only: Iterable[str] | None = None
    ) -> None:
        """Mirror the project's files (open buffers given as `overrides`, by relative path),
        ignored ones left out, as the index leaves them out; `only` these when given."""
        self.path.mkdir(parents=True, exist_ok=True)
        overrides = dict(overrides or {})
        if only is not None:
            for rel in only:
                source = self.root / rel
                wanted = counts(self.root, source)
                text = overrides.get(rel)
                if wanted and text is not None:
                    self._mirror(rel, source, text)
                elif wanted and source.is_file():
                    self._mirror(rel, source, None)
                elif not source.is_dir():
                    with contextlib.suppress(ValueError, OSError):
                        self._inside(rel).unlink(missing_ok=True)
            return
        present: set[str] = set()
        for source, rel in walk_project(self.root):
            if source.is_file():
                present.add(rel)
                self._mirror(rel, source, overrides.pop(rel, None))
        for rel, text in overrides.items():  # buffers not (yet) on disk
            if counts(self.root, self.root / rel):
                present.add(rel)
                self._mirror(rel, self.root / rel, text)
        for rel in set(_mirrored_files(self.path)) - present:
            (self.path / rel).unlink(missing_ok=True)

    def _mirror(self, rel: str, source: Path, text: str | None) -> None:
        """One file into the shadow: the buffer's text, else the disk's bytes."""
        try:
            target = self._inside(rel)
            if text is not None:
                _write_if_changed(target, encode(text))
            elif _differs(source, target):
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)  # its mtime too: the next sync skips it
        except (OSError, ValueError) as exc:  # deleted or unreadable meanwhile: next sync
            log.info("shadow: cannot mirror %s: %s", rel, exc)

    def seed_from(self, other: Shadow) -> None:
        """Give a never-built shadow a copy of a built one's `_build`: dune then redoes
        only what differs (the copy is mostly I/O; a build from nothing compiles all).
        A failed copy is removed, and the shadow builds from nothing."""
        source, target = other.path / "_build", self.path / "_build"
        if target.exists() or not source.is_dir():
            return
        try:
            shutil.copytree(source, target, symlinks=True)
        except (OSError, shutil.Error) as exc:
            log.info("shadow: cannot copy %s: %s", source, exc)
            shutil.rmtree(target, ignore_errors=True)

    def build(self, timeout: float) -> Run:
        return self._dune(["build", "@check"], timeout)

    def check(
        self, files: Mapping[str, str | None], timeout: float, tests: bool = False
    ) -> Verification:
        """Write `files` (relative path → text; None deletes), check, and put everything back."""
        saved: dict[str, bytes | None] = {}
        stages: list[Stage] = []
        try:
            for rel, text in files.items():
                target = self._inside(rel)
                saved[rel] = target.read_bytes() if target.exists() else None
                if text is None:
                    target.unlink(missing_ok=True)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    write_source(target, text)
            run = self.build(timeout)
            errors = parse_compiler_output(run.output, self.path)
            if run.code is None:
                stages.append(Stage("check", TIMEOUT, round(run.ms)))
                return Verification(TIMEOUT, tuple(stages), errors)
            if run.code != 0:
                status = compile_status(errors)
                stages.append(Stage("check", status, round(run.ms)))
                return Verification(status, tuple(stages), errors or _unparsed(run))
            stages.append(Stage("check", OK, round(run.ms)))
            if tests:
                test = self._dune(["test"], timeout)
                if test.code is None:
                    stages.append(Stage("test", TIMEOUT, round(test.ms)))
                    return Verification(TIMEOUT, tuple(stages), _unparsed(test))
                if test.code != 0:
                    stages.append(Stage("test", TEST_FAILURE, round(test.ms)))
                    found = parse_compiler_output(test.output, self.path)
                    return Verification(TEST_FAILURE, tuple(stages), found or _unparsed(test))
                stages.append(Stage("test", OK, round(test.ms)))
            return Verification(OK, tuple(stages))
        finally:
            for rel, data in saved.items():
                target = self.path / rel
                if data is None:
                    target.unlink(missing_ok=True)
                else:
                    _write_if_changed(target, data)

    def _inside(self, rel: str) -> Path:
        target = (self.path / rel).resolve()
        if not target.is_relative_to(self.path.resolve()):
            raise ValueError(f"{rel} is outside the shadow")
        return target


def _unparsed(run: Run) -> tuple[CheckError, ...]:
    """dune failed without a compiler report: keep the end of what it said."""
    tail = " ".join(run.output.strip().splitlines()[-5:])[:500]
    return (CheckError("", 0, 0, tail or f"dune exited with {run.code}"),)


def _mirrored_files(shadow: Path) -> Iterator[str]:
    """Every file of a shadow but its build (to find the ones the project no longer has)."""
    for dirpath, dirnames, filenames in os.walk(shadow, followlinks=False):
        dirnames[:] = [d for d in dirnames if not is_skipped_dir(d)]
        here = Path(dirpath)
        for name in filenames:
            yield (here / name).relative_to(shadow).as_posix()


def _differs(source: Path, target: Path) -> bool:
    """Whether the mirrored copy is out of date (copies keep the source's mtime)."""
    try:
        ss, st = source.stat(), target.stat()
    except FileNotFoundError:
        return True
    return ss.st_size != st.st_size or ss.st_mtime_ns != st.st_mtime_ns


def _write_if_changed(target: Path, data: bytes) -> None:
    """Keep the mtime (and dune's cache) of a file whose bytes are the same."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and target.read_bytes() == data:
        return
    target.write_bytes(data)
