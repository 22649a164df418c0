"""File summaries kept on disk between runs, keyed by content hash.

A one-shot `ocaml-ai-ls edit` (or `context`) starts with an empty index; parsing
and summarising every file of a library again costs more than the rest of the
request. The store keeps, per workspace root, the summaries of the files the
last run indexed, keyed by (grammar, hash of the file's bytes): a file whose
bytes are unchanged is not parsed again, any change misses. The store is
dropped whole when the summarizer changes (its sources, the grammar's version
or Python's), so a stale summary is never read.

It lives under `$XDG_CACHE_HOME/ocaml-ai-ls/index/`, never in the workspace.
A file that cannot be read back (truncated, another format) is ignored and
rewritten; a write goes to a temporary file then replaces the old one, so a
killed run leaves the previous store. Pickle is safe here only because the
file is the user's own cache, written by this code.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sys
import tempfile
import threading
from functools import cache
from pathlib import Path

import tree_sitter
import tree_sitter_ocaml

from ..paths import cache_dir
from .parsing import GRAMMARS, SourceKind
from .summary import Chunk, FileSummary

log = logging.getLogger(__name__)

Key = tuple[str, bytes]

#: The summarizer's own sources: a change to any of them changes what a summary holds.
_SOURCES = ("context/summary.py", "context/parsing.py")


def store_dir() -> Path:
    return cache_dir() / "index"


@cache
def fingerprint() -> str:
    """What summaries depend on besides the file: the summarizer's sources and
    queries, tree-sitter's version and the grammar's binary, Python's."""
    digest = hashlib.blake2b(digest_size=16)
    package = Path(__file__).resolve().parent.parent
    for name in _SOURCES:
        digest.update((package / name).read_bytes())
    for entry in sorted(GRAMMARS.glob("*.scm")):
        digest.update(entry.name.encode() + entry.read_bytes())
    binding = Path(tree_sitter_ocaml.__file__).parent
    for so in sorted(binding.glob("_binding*")):  # the grammar: its size and time
        stat = so.stat()
        digest.update(f"{so.name} {stat.st_size} {stat.st_mtime_ns}".encode())
    digest.update(getattr(tree_sitter, "__version__", "?").encode())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def content_key(kind: SourceKind, data: bytes) -> Key:
    return (kind.value, hashlib.blake2b(data, digest_size=16).digest())


class SummaryStore:
    """One root's summaries by content key: read once, written back when they changed.

    It serves one scan: `save` ends it and lets go of what was read, so a long session
    does not keep the summaries of texts its files no longer have (a file changed
    later is summarised as the index always does)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stored: dict[Key, tuple[int, tuple[Chunk, ...]]] | None = None
        #: What this run used or made: what the next run will find.
        self._used: dict[Key, tuple[int, tuple[Chunk, ...]]] = {}
        self._saved = False
        self.hits = 0
        self.misses = 0

    @classmethod
    def for_root(cls, root: Path) -> SummaryStore:
        name = hashlib.blake2b(str(root).encode(), digest_size=12).hexdigest()
        return cls(store_dir() / f"{name}.pickle")

    def _load(self) -> dict[Key, tuple[int, tuple[Chunk, ...]]]:
        try:
            with self.path.open("rb") as f:
                stamp, entries = pickle.load(f)
            if stamp != fingerprint() or not isinstance(entries, dict):
                log.info("index store %s: made by another summarizer, not used", self.path)
                return {}
            return entries
        except FileNotFoundError:
            return {}
        except Exception as exc:  # a damaged cache is only a cold start
            log.warning("index store %s unreadable (%s); starting cold", self.path, exc)
            return {}

    def get(self, kind: SourceKind, data: bytes) -> tuple[Key, FileSummary | None]:
        """The stored summary of these bytes, if the last run had it (and the key)."""
        key = content_key(kind, data)
        with self._lock:
            if self._stored is None and not self._saved:
                self._stored = self._load()
            found = self._stored.get(key) if self._stored is not None else None
            if found is None:
                self.misses += 1
                return key, None
            self.hits += 1
            self._used[key] = found
        return key, FileSummary(kind, found[0], found[1])

    def put(self, key: Key, summary: FileSummary) -> None:
        with self._lock:
            if not self._saved:
                self._used[key] = (summary.line_count, summary.chunks)

    def save(self) -> None:
        """Write what this run used, unless it is what was read (the usual warm run)."""
        with self._lock:
            if self._saved:
                return
            entries, stored = self._used, self._stored
            self._saved, self._used, self._stored = True, {}, None
        if stored is not None and entries.keys() == stored.keys():
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".store-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    pickle.dump((fingerprint(), entries), f, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:  # a read-only cache directory only costs speed
            log.warning("index store %s not written: %s", self.path, exc)
