"""The workspace index: every `.ml`/`.mli` under the root, summarised, with module names.

Files are found by walking the root (skipping `_build`, `_opam`, `.git` and
what `.gitignore` ignores; symlinked directories are not followed, so loops
cannot stall it). A file's summary comes from the editor's buffer when it is
open, else from disk; it is refreshed on `didChange` (from the buffer's
incremental tree), on watched-file events and on `didSave`. Chunk summaries
are cached by content hash in a bounded cache, so memory follows the
workspace, not the session.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cachetools import LRUCache

from ..documents import Document, DocumentStore
from ..ignores import counts, walk_project
from ..paths import is_inside
from ..uris import path_to_uri, uri_to_path
from .dune import DuneFile, DuneSyntaxError, Stanza, module_name, read_dune
from .parsing import SourceKind, parse
from .summary import ChunkCache, FileSummary, resummarize, summarize
from .summary_store import SummaryStore

log = logging.getLogger(__name__)

#: Source files larger than this are generated code: skipped with a log line.
MAX_SOURCE_BYTES = 2_000_000


@dataclass(eq=False)
class SourceFile:
    path: Path
    rel: str
    kind: SourceKind
    summary: FileSummary | None = None

    @property
    def module(self) -> str:
        return module_name(self.path.name.split(".", 1)[0])


@dataclass(eq=False)
class ModuleUnit:
    """One compilation unit: `foo.ml` and `foo.mli` of a directory, and its stanza."""

    name: str
    dir: str
    stanza: Stanza | None
    ml: SourceFile | None = None
    mli: SourceFile | None = None

    def files(self) -> list[SourceFile]:
        """Interface first: it is what other modules see."""
        return [f for f in (self.mli, self.ml) if f is not None]


@dataclass(frozen=True)
class _Names:
    """What one file contributes to the project's name tables."""

    defined: frozenset[str]
    used: frozenset[str]
    qualified: Counter[tuple[str, str]]
    modules: frozenset[str]


@dataclass
class _Tables:
    """Derived lookups, rebuilt when files or dune files come or go."""

    units: dict[Path, ModuleUnit] = field(default_factory=dict)
    #: The unit of each indexed file (a lookup the resolver makes thousands of times).
    of_file: dict[Path, ModuleUnit] = field(default_factory=dict)
    by_dir: dict[Path, list[SourceFile]] = field(default_factory=dict)
    by_name: dict[str, list[ModuleUnit]] = field(default_factory=dict)
    libraries: dict[str, Stanza] = field(default_factory=dict)


def read_source(path: Path) -> bytes | None:
    """The bytes of a source file, or None (with a log line) if it is not OCaml text."""
    try:
        if path.stat().st_size > MAX_SOURCE_BYTES:
            log.info("index: skipping %s (larger than %d bytes)", path, MAX_SOURCE_BYTES)
            return None
        data = path.read_bytes()
    except OSError as exc:
        log.info("index: skipping %s (%s)", path, exc.strerror or exc)
        return None
    if b"\0" in data:
        log.info("index: skipping %s (binary)", path)
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        log.info("index: skipping %s (not UTF-8)", path)
        return None
    return data


class _CollectorPause:
    """Python's cycle collector paused while scans run.

    A cold scan allocates some hundred thousand objects that live as long as the
    index (uses and definitions of every file); with the collector on, it walks
    the growing heap again and again during the scan (a sixth of a cold index of
    `base`). Summaries hold no cycles: reference counting frees what a scan drops
    as it goes. When the last running scan ends the collector is resumed (if it
    was on) and collects as it always does: the young objects once, soon after.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._was_enabled = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._running == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0 and self._was_enabled:
                    gc.enable()


_collector_paused = _CollectorPause()


def settle() -> None:
    """After a long-lived process has indexed a root: collect once, then freeze what is
    left out of the cycle collector's reach. The index is most of such a process's
    objects; each full collection would walk all of them again (150 ms on an
    87k-line project, at a random moment of some request). Frozen objects are still
    freed by reference counting when a file changes."""
    gc.collect()
    gc.freeze()


class WorkspaceIndex:
    """Summaries and module structure of one workspace root."""

    def __init__(
        self,
        root: Path,
        documents: DocumentStore | None = None,
        cache: ChunkCache | None = None,
        store: SummaryStore | None = None,
    ) -> None:
        self.root = root
        self.documents = documents
        self.cache = cache if cache is not None else ChunkCache()
        #: Summaries of the last run on this root (see `summary_store`): a file whose
        #: bytes did not change is not parsed again.
        self.store = store
        self.files: dict[Path, SourceFile] = {}
        self.dune: dict[str, DuneFile] = {}
        self.ready = threading.Event()
        self._lock = threading.RLock()
        self._tables: _Tables | None = None
        #: name → files defining it at module level / using it; built at the end of
        #: `scan`, then refreshed lazily as files change.
        self._definers: dict[str, set[Path]] = {}
        self._users: dict[str, set[Path]] = {}
        #: Uses of `M.name` in the whole project, per (M, name) and per M.
        self._pairs: Counter[tuple[str, str]] = Counter()
        self._module_uses: Counter[str] = Counter()
        #: module name → files whose paths go through it.
        self._naming: dict[str, set[Path]] = {}
        self._names_of: dict[Path, _Names] = {}
        self._dirty: set[Path] = set()
        #: Bumped whenever the name tables change (for caches derived from them).
        self.names_generation = 0
        self._beside: LRUCache[tuple[Path, int], tuple[int, Counter[str]]] = LRUCache(64)
        #: The open document (serial, generation) a file's summary was made from.
        self._read_at: dict[Path, tuple[int, int]] = {}

    # -- discovery ---------------------------------------------------------

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()

    def rel_dir(self, directory: Path) -> str:
        """A directory as dune files are keyed: relative, the root being `""`."""
        rel = self.rel(directory)
        return "" if rel == "." else rel

    def walk(self) -> Iterator[Path]:
        """Source and dune files under the root, ignored ones left out."""
        for path, _rel in walk_project(self.root):
            if path.name.endswith((".ml", ".mli")) or path.name == "dune":
                yield path

    def indexable(self, path: Path) -> bool:
        """Whether `walk` would list `path` (a file an editor's watcher reports)."""
        return counts(self.root, path)

    def scan(
        self,
        report: Callable[[int, int], None] = lambda done, total: None,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        """Index everything (blocking: run it in a thread); `report(done, total)` as it goes."""
        started = time.perf_counter()
        found = list(self.walk())
        sources = [p for p in found if p.name != "dune"]
        with self._lock:
            for path in found:
                if path.name == "dune":
                    self._load_dune(path)
            for path in sources:
                kind = SourceKind.of(path)
                if kind is not None and path not in self.files:
                    self.files[path] = SourceFile(path, self.rel(path), kind)
            self._tables = None
        with _collector_paused():
            for done, path in enumerate(sources, 1):
                if cancelled():
                    log.info("index: cancelled after %d of %d files", done - 1, len(sources))
                    return
                self.summary(path)
                if done % 50 == 0 or done == len(sources):
                    report(done, len(sources))
            self._refresh_names()  # now, not in the first request that needs them
            _ = self.tables  # the units and libraries too
        if self.store is not None:
            self.store.save()  # before `ready`: a one-shot run may end right after
        self.ready.set()
        log.info("index: %d files in %.0f ms", len(sources), (time.perf_counter() - started) * 1000)

    # -- summaries ------------------------------------------------------------

    def summary(self, path: Path) -> FileSummary | None:
        """The file's summary, computed on first use (open buffer over disk)."""
        source = self.files.get(path)
        if source is None:
            kind = SourceKind.of(path)
            if kind is None or not path.is_file() or not is_inside(path, self.root):
                return None
            source = self._add(path, kind)
        if source.summary is None:
            doc = self._document(path)
            if doc is not None and doc.tree is not None:
                self.update_document(doc)
            else:
                data = read_source(path)
                if data is None:
                    return None
                self._set(source, self._summarize_read(data, source.kind))
        return source.summary

    def _summarize_read(self, data: bytes, kind: SourceKind) -> FileSummary:
        """A file read from disk: from the store when its bytes are known."""
        if self.store is None:
            return self.summarize_bytes(data, kind)
        key, stored = self.store.get(kind, data)
        if stored is None:
            stored = self.summarize_bytes(data, kind)
            self.store.put(key, stored)
        return stored

    def _set(self, source: SourceFile, summary: FileSummary | None) -> None:
        source.summary = summary
        self._read_at.pop(source.path, None)  # update_document sets it again
        self._dirty.add(source.path)

    def summarize_bytes(self, data: bytes, kind: SourceKind) -> FileSummary:
        return summarize(parse(data, kind), data, kind, self.cache)

    def _document(self, path: Path) -> Document | None:
        if not self.documents:  # none open (as during most of a first scan): no URI to make
            return None
        return self.documents.get(path_to_uri(path))

    def _add(self, path: Path, kind: SourceKind) -> SourceFile:
        with self._lock:
            source = self.files.get(path)
            if source is None:
                source = self.files[path] = SourceFile(path, self.rel(path), kind)
                self._tables = None
            return source

    # -- freshness --------------------------------------------------------------

    def update_document(self, doc: Document) -> None:
        """Re-summarise an open buffer from its (incrementally parsed) tree."""
        if doc.tree is None or doc.kind is None:
            return
        path = uri_to_path(doc.uri)
        if path is None or not is_inside(path, self.root):
            return
        source = self.files.get(path) or self._add(path, doc.kind)
        previous = source.summary
        read = self._read_at.get(path)
        edits = (
            doc.edits_since(read[1])
            if previous is not None and read is not None and read[0] == doc.serial
            else None
        )
        if edits == []:
            return  # this text is the one summarized
        if previous is not None and edits is not None and len(edits) == 1:
            summary = resummarize(previous, doc.tree, doc.data, doc.kind, self.cache, edits[0])
        else:
            summary = summarize(doc.tree, doc.data, doc.kind, self.cache)
        self._set(source, summary)
        self._read_at[path] = (doc.serial, doc.generation)

    def changed(self, path: Path) -> None:
        """A file was created or changed on disk (or saved): read it again."""
        if path.name == "dune":
            if path.exists() and not self.indexable(path):
                return
            with self._lock:
                self._load_dune(path)
                self._tables = None
            return
        kind = SourceKind.of(path)
        if kind is None:
            return
        if not path.exists():
            self.removed(path)
            return
        if not self.indexable(path):
            return
        source = self.files.get(path) or self._add(path, kind)
        self._set(source, None)
        self.summary(path)

    def removed(self, path: Path) -> None:
        with self._lock:
            if path.name == "dune":
                self.dune.pop(self.rel_dir(path.parent), None)
            elif self.files.pop(path, None) is None:
                return
            self._dirty.add(path)
            self._tables = None

    def _load_dune(self, path: Path) -> None:
        rel_dir = self.rel_dir(path.parent)
        try:
            text = path.read_text(encoding="utf-8")
            self.dune[rel_dir] = read_dune(rel_dir, text)
        except (OSError, UnicodeDecodeError, DuneSyntaxError) as exc:
            log.info("index: cannot read %s: %s", path, exc)
            self.dune.pop(rel_dir, None)

    # -- names ------------------------------------------------------------------

    def definers(self, name: str) -> list[SourceFile]:
        """Files with a module-level definition named `name`, in path order."""
        self._refresh_names()
        return [self.files[p] for p in sorted(self._definers.get(name, ())) if p in self.files]

    def users(self, name: str) -> list[SourceFile]:
        """Files that use a path ending in `name`, in path order."""
        self._refresh_names()
        return [self.files[p] for p in sorted(self._users.get(name, ())) if p in self.files]

    def uses(self, module: str, name: str) -> int:
        """How often the project writes `module.name` (the module as written)."""
        self._refresh_names()
        return self._pairs.get((module, name), 0)

    def usage(self) -> Mapping[tuple[str, str], int]:
        """How often the project writes each `M.name` (read-only; for a request's scoring)."""
        self._refresh_names()
        return self._pairs

    def module_uses(self, module: str) -> int:
        """How often the project writes `module.<anything>`."""
        self._refresh_names()
        return self._module_uses.get(module, 0)

    def naming(self, module: str) -> set[Path]:
        """Files whose paths go through a module of that name."""
        self._refresh_names()
        return self._naming.get(module, set())

    def modules_named_beside(self, directory: Path) -> tuple[int, Counter[str]]:
        """How many files a directory holds, and how many of them name each module
        (remembered until the names change: every request in a directory asks)."""
        with self._lock:
            self._refresh_names()
            key = (directory, self.names_generation)
            found = self._beside.get(key)
            if found is None:
                files = self.files_in(directory)
                share = Counter(name for f in files for name in self.modules_named_in(f.path))
                found = self._beside[key] = (len(files), share)
            return found

    def modules_named_in(self, path: Path) -> frozenset[str]:
        self._refresh_names()
        names = self._names_of.get(path)
        return names.modules if names is not None else frozenset()

    def _refresh_names(self) -> None:
        with self._lock:
            if not self._dirty:
                return
            dirty, self._dirty = self._dirty, set()
            changed = False
            for path in dirty:
                source = self.files.get(path)
                summary = source.summary if source is not None else None
                new = None
                if summary is not None:
                    new = _Names(
                        # names need no shifting: not the file's `definitions`, which a
                        # request builds for the few files it looks at
                        frozenset(d.name for c in summary.chunks for d in c.summary.definitions),
                        summary.used_names,
                        summary.qualified,
                        summary.modules_named,
                    )
                old = self._names_of.get(path)
                if new == old:
                    continue  # a file opened as it is on disk, a keystroke in a comment
                changed = True
                if old is not None:
                    del self._names_of[path]
                    self._forget(path, old)
                if new is None:
                    continue
                self._names_of[path] = new
                for name in new.defined:
                    self._definers.setdefault(name, set()).add(path)
                for name in new.used:
                    self._users.setdefault(name, set()).add(path)
                for module in new.modules:
                    self._naming.setdefault(module, set()).add(path)
                self._pairs.update(new.qualified)
                for (module, _), n in new.qualified.items():
                    self._module_uses[module] += n
            if changed:
                self.names_generation += 1

    def _forget(self, path: Path, old: _Names) -> None:
        for name in old.defined:
            self._definers.get(name, set()).discard(path)
        for name in old.used:
            self._users.get(name, set()).discard(path)
        for module in old.modules:
            self._naming.get(module, set()).discard(path)
        self._pairs.subtract(old.qualified)
        for (module, _), n in old.qualified.items():
            self._module_uses[module] -= n

    # -- module structure -------------------------------------------------------

    @property
    def tables(self) -> _Tables:
        tables = self._tables
        if tables is None:
            with self._lock:
                tables = self._tables = self._build_tables()
        return tables

    def _build_tables(self) -> _Tables:
        tables = _Tables()
        for stanza in (s for d in self.dune.values() for s in d.stanzas):
            if stanza.is_library:
                tables.libraries[stanza.name] = stanza
                if stanza.public_name:
                    tables.libraries[stanza.public_name] = stanza
        for source in list(self.files.values()):
            tables.by_dir.setdefault(source.path.parent, []).append(source)
            key = source.path.with_suffix("")
            unit = tables.units.get(key)
            if unit is None:
                rel_dir = self.rel_dir(source.path.parent)
                unit = ModuleUnit(source.module, rel_dir, self.stanza_of(rel_dir, source.module))
                tables.units[key] = unit
                tables.by_name.setdefault(unit.name, []).append(unit)
            tables.of_file[source.path] = unit
            if source.kind is SourceKind.INTERFACE:
                unit.mli = source
            else:
                unit.ml = source
        return tables

    def stanza_of(self, rel_dir: str, module: str) -> Stanza | None:
        """The stanza a module of `rel_dir` belongs to (dune's `include_subdirs` followed)."""
        parts = rel_dir.split("/") if rel_dir else []
        for depth in range(len(parts), -1, -1):
            d = "/".join(parts[:depth])
            dune = self.dune.get(d)
            if dune is None or (depth < len(parts) and not dune.include_subdirs):
                continue
            fallback: Stanza | None = None
            for stanza in dune.stanzas:
                if stanza.modules is not None:
                    if module in stanza.modules:
                        return stanza
                elif fallback is None:
                    fallback = stanza
            if fallback is not None:
                return fallback
        return None

    def unit_of(self, path: Path) -> ModuleUnit | None:
        tables = self.tables
        unit = tables.of_file.get(path)
        return unit if unit is not None else tables.units.get(path.with_suffix(""))

    def files_in(self, directory: Path) -> list[SourceFile]:
        """The indexed files of one directory (not below it)."""
        return self.tables.by_dir.get(directory, [])

    def units_named(self, name: str) -> list[ModuleUnit]:
        return self.tables.by_name.get(name, [])

    def library(self, name: str) -> Stanza | None:
        return self.tables.libraries.get(name)

    def library_units(self, stanza: Stanza) -> list[ModuleUnit]:
        return [u for u in self.tables.units.values() if u.stanza == stanza]

    def dune_text(self, stanza: Stanza) -> tuple[str, list[str]] | None:
        """The dune file's path relative to the root and its lines."""
        path = self.root / stanza.dir / "dune"
        try:
            return self.rel(path), path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return None
