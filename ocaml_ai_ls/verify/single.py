"""Type-checking without a dune project: each changed module compiled on its own.

Outside a dune project nothing says where a file's dependencies are, so a
changed module is compiled alone (`ocamlfind ocamlc -c`, its `.mli` first when
it has one) in a scratch directory. That only means something when the file,
as it is now, compiles alone too: when it does not (it uses another module of
the project, a library), the candidate is `unverified`, with the reason.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

from cachetools import LRUCache

from ..source_text import read_source, write_source
from .compiler_output import parse_compiler_output
from .result import (
    OK,
    TIMEOUT,
    UNVERIFIED,
    CheckError,
    Stage,
    Verification,
    compile_status,
)

#: Reads a file's current text by relative path (the editor's buffer over the disk).
Reader = Callable[[str], str | None]


def disk_reader(root: Path, buffers: Mapping[str, str]) -> Reader:
    """Open buffers (relative path → text) over the files under `root`."""

    def read(rel: str) -> str | None:
        if rel in buffers:
            return buffers[rel]
        try:
            return read_source(root / rel)
        except OSError:
            return None

    return read


def compiler() -> list[str] | None:
    """The compiler command to use: ocamlfind's (it knows the installed libraries), else ocamlc."""
    if shutil.which("ocamlfind"):
        return ["ocamlfind", "ocamlc"]
    if shutil.which("ocamlc"):
        return ["ocamlc"]
    return None


class SingleFileChecker:
    """Checks candidates module by module; remembers which current texts compile alone."""

    def __init__(self, command: list[str] | None = None) -> None:
        self.command = command if command is not None else compiler()
        self._alone: LRUCache[str, tuple[CheckError, ...]] = LRUCache(256)
        self._lock = threading.Lock()  # candidates are checked in parallel threads

    def check(self, files: Mapping[str, str | None], read: Reader, timeout: float) -> Verification:
        """Compile each changed module's new text (blocking: run it in a thread); `read`
        gives the current text of the files the candidate leaves as they are."""
        if self.command is None:
            return _unverified("no OCaml compiler found (install ocaml and ocamlfind)")
        started = time.perf_counter()
        modules: dict[str, dict[str, str | None]] = {}
        for rel, text in files.items():
            path = PurePosixPath(rel)
            if path.suffix in (".ml", ".mli") and text is not None:
                modules.setdefault(str(path.with_suffix("")), {})[path.suffix] = text
        errors: list[CheckError] = []
        for stem, new in sorted(modules.items()):
            texts = {ext: new.get(ext, read(stem + ext)) for ext in (".mli", ".ml")}
            current = {ext: read(stem + ext) for ext in (".mli", ".ml")}
            if any(current.values()):
                before = self._compiles_alone(stem, current, timeout)
                if before is None:
                    return _unverified(f"type-checking {stem}.ml timed out", TIMEOUT, started)
                if before:
                    why = before[0].message.splitlines()[0]
                    return _unverified(
                        f"{stem}.ml does not compile on its own outside a dune project ({why})",
                        started=started,
                    )
            found = self._compile(stem, texts, timeout)
            if found is None:
                return _timed(TIMEOUT, started, (CheckError("", 0, 0, "the compiler timed out"),))
            errors.extend(found)
        if not errors:
            return _timed(OK, started, ())
        return _timed(compile_status(tuple(errors)), started, tuple(errors))

    def _compiles_alone(
        self, stem: str, texts: Mapping[str, str | None], timeout: float
    ) -> tuple[CheckError, ...] | None:
        key = hashlib.blake2b(repr((stem, sorted(texts.items()))).encode()).hexdigest()
        with self._lock:
            known = self._alone.get(key)
        if known is not None:
            return known
        found = self._compile(stem, texts, timeout)
        if found is not None:
            with self._lock:
                self._alone[key] = found
        return found

    def _compile(
        self, stem: str, texts: Mapping[str, str | None], timeout: float
    ) -> tuple[CheckError, ...] | None:
        """The errors of compiling one module in a scratch directory; None at the timeout."""
        assert self.command is not None
        name = PurePosixPath(stem).name
        with tempfile.TemporaryDirectory(prefix="ocaml-ai-check-") as scratch:
            where = Path(scratch)
            for ext in (".mli", ".ml"):
                text = texts.get(ext)
                if text is None:
                    continue
                write_source(where / (name + ext), text)
                try:
                    run = subprocess.run(
                        [*self.command, "-c", name + ext],
                        cwd=where,
                        capture_output=True,
                        text=True,
                        timeout=timeout,
                        check=False,
                    )
                except subprocess.TimeoutExpired:
                    return None
                if run.returncode != 0:
                    found = parse_compiler_output(run.stdout + run.stderr, where)
                    parent = str(PurePosixPath(stem).parent)
                    prefix = "" if parent == "." else parent + "/"
                    return tuple(
                        CheckError(
                            prefix + e.path if e.path else "",
                            e.line,
                            e.column,
                            e.message,
                            e.end_line,
                            e.end_column,
                        )
                        for e in found
                    ) or (CheckError("", 0, 0, run.stderr.strip()[-500:] or "compile failed"),)
        return ()


def _timed(status: str, started: float, errors: tuple[CheckError, ...]) -> Verification:
    ms = round((time.perf_counter() - started) * 1000)
    return Verification(status, (Stage("ocamlc", status, ms),), errors)


def _unverified(reason: str, stage: str = UNVERIFIED, started: float | None = None) -> Verification:
    stages: tuple[Stage, ...] = ()
    if started is not None:
        stages = (Stage("ocamlc", stage, round((time.perf_counter() - started) * 1000)),)
    return Verification(UNVERIFIED, stages, (CheckError("", 0, 0, reason),))
