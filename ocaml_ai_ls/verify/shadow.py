"""A shadow build: a copy of the user's dune project, outside it, with a warm `_build`.

A candidate is checked by writing its files into the shadow, running
`dune build @check` (then `dune test` when asked) under a timeout, and putting
the shadow's files back, whatever happened: dune killed at the timeout
included. The user's tree is only ever read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..workspace import is_skipped_dir
from .compiler_output import parse_compiler_output
from .result import (
    OK,
    PARSE_ERROR,
    TEST_FAILURE,
    TIMEOUT,
    TYPE_ERROR,
    CheckError,
    Stage,
    Verification,
)


def cache_root() -> Path:
    """Where shadows live: `$XDG_CACHE_HOME/ocaml-ai-ls/shadows` (never in the workspace)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ocaml-ai-ls" / "shadows"


def shadow_dir(root: Path, index: int, cache: Path | None = None) -> Path:
    digest = hashlib.blake2b(str(root).encode(), digest_size=8).hexdigest()
    return (cache or cache_root()) / f"{root.name}-{digest}" / str(index)


@dataclass(frozen=True)
class Run:
    """One dune invocation: exit code (None when killed at the timeout), output, time."""

    code: int | None
    output: str
    ms: float


def run_dune(args: list[str], cwd: Path, timeout: float) -> Run:
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

    def __init__(self, root: Path, path: Path) -> None:
        self.root = root
        self.path = path

    def sync(self, overrides: Mapping[str, str] | None = None) -> None:
        """Mirror the project's files (open buffers given as `overrides`, by relative path)."""
        self.path.mkdir(parents=True, exist_ok=True)
        wanted: set[str] = set()
        for rel in _project_files(self.root):
            wanted.add(rel)
            source = self.root / rel
            target = self.path / rel
            text = overrides.get(rel) if overrides else None
            if text is not None:
                _write_if_changed(target, text.encode("utf-8"))
            elif not target.exists() or _differs(source, target):
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
        for rel in set(_project_files(self.path)) - wanted:
            (self.path / rel).unlink(missing_ok=True)

    def build(self, timeout: float) -> Run:
        return run_dune(["build", "@check"], self.path, timeout)

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
                    target.write_text(text, encoding="utf-8")
            run = self.build(timeout)
            errors = parse_compiler_output(run.output, self.path)
            if run.code is None:
                stages.append(Stage("check", TIMEOUT, round(run.ms)))
                return Verification(TIMEOUT, tuple(stages), errors)
            if run.code != 0:
                status = _compile_status(errors)
                stages.append(Stage("check", status, round(run.ms)))
                return Verification(status, tuple(stages), errors or _unparsed(run))
            stages.append(Stage("check", OK, round(run.ms)))
            if tests:
                test = run_dune(["test"], self.path, timeout)
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


def _compile_status(errors: tuple[CheckError, ...]) -> str:
    if errors and all(e.message.startswith("Syntax error") for e in errors):
        return PARSE_ERROR
    return TYPE_ERROR


def _unparsed(run: Run) -> tuple[CheckError, ...]:
    """dune failed without a compiler report: keep the end of what it said."""
    tail = " ".join(run.output.strip().splitlines()[-5:])[:500]
    return (CheckError("", 0, 0, tail or f"dune exited with {run.code}"),)


def _project_files(root: Path) -> Iterator[str]:
    """Every file dune may read: all of the tree but build, VCS and hidden directories."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if not is_skipped_dir(d)]
        here = Path(dirpath)
        for name in filenames:
            path = here / name
            if path.is_file() and not path.is_symlink():
                yield path.relative_to(root).as_posix()


def _differs(a: Path, b: Path) -> bool:
    sa, sb = a.stat(), b.stat()
    return sa.st_size != sb.st_size or a.read_bytes() != b.read_bytes()


def _write_if_changed(target: Path, data: bytes) -> None:
    """Keep the mtime (and dune's cache) of a file whose bytes are the same."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and target.read_bytes() == data:
        return
    target.write_bytes(data)
