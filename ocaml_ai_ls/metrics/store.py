"""The metrics store: one SQLite row per generation, written off the request path.

`MetricsStore.record` and `.outcome` only put an item on a bounded queue; one
writer thread owns the connection and writes each row as its own transaction
(WAL mode, `synchronous=NORMAL`), so a generation never waits for the disk and
a kill -9 loses at most the row being written. Two servers (two editors) share
one file: SQLite's locks serialise their writes and the busy timeout makes each
wait briefly for the other. A file that cannot be written (no directory,
read-only, locked too long, disk full, not a database) costs the row and one
warning per kind of problem, never the generation; a file that is not a
database is left exactly as it is.

Nothing here reads the environment's API key or the settings: a row holds only
what `GenerationRecord` names, and prompts and answers only when the store is
told to keep them (`store_prompts`, off by default).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from operator import attrgetter
from pathlib import Path

from cachetools import LRUCache

from ..config import ENV_METRICS_DB

log = logging.getLogger(__name__)

#: `PRAGMA user_version` of the schema below; a later version only adds columns.
SCHEMA_VERSION = 1
#: Items waiting for the writer at most; more are dropped (with one warning).
QUEUE_SIZE = 10_000
#: How long a write waits for another process holding the file's write lock. The
#: writer is off the request path, so waiting costs no generation anything; two busy
#: servers on one file under load must not drop each other's rows.
BUSY_TIMEOUT_S = 5.0
#: A write (or the opening) that SQLite refuses as busy without waiting out the busy
#: timeout, as it may when two processes set up a new file at once, is tried again this
#: many times (backing off); one that waited the whole timeout is not.
BUSY_RETRIES = 5
#: After a failure to open the file, opening is tried again this much later.
RETRY_S = 30.0


@dataclass(frozen=True)
class GenerationRecord:
    """What one generation did, as the pipeline measured it (times in ms)."""

    request_id: str
    #: Epoch seconds.
    time: float
    #: `workspace_hash` of the root, never the path.
    workspace: str
    provider: str
    model: str
    #: The A/B arm, "" when there is no split.
    arm: str
    strategy: str
    prompt_tokens: int | None
    completion_tokens: int | None
    context_ms: float | None
    first_token_ms: float | None
    model_ms: float | None
    parse_ms: float | None
    apply_ms: float | None
    verify_ms: float | None
    total_ms: float | None
    #: Usable candidates.
    candidates: int
    #: Answers whose edit applied to the files.
    applied_candidates: int
    #: The best candidate's verification status ("ok", "type_error", ...), None: no candidate.
    best_status: str | None
    repair_rounds: int
    #: The model error message, if the generation failed.
    error: str | None
    #: Kept only by a store with `store_prompts` on.
    prompt: str | None = None
    #: JSON list of the answers' texts; kept only with `store_prompts` on.
    answers: str | None = None


_SQL_TYPES = {
    "str": "TEXT NOT NULL",
    "str | None": "TEXT",
    "float": "REAL NOT NULL",
    "float | None": "REAL",
    "int": "INTEGER NOT NULL",
    "int | None": "INTEGER",
}
RECORD_COLUMNS = tuple(f.name for f in fields(GenerationRecord))
_COLUMN_DEFS = ",\n  ".join(f"{f.name} {_SQL_TYPES[str(f.type)]}" for f in fields(GenerationRecord))
SCHEMA = (
    f"""CREATE TABLE IF NOT EXISTS generations (
  id INTEGER PRIMARY KEY,
  {_COLUMN_DEFS},
  applied INTEGER,
  accepted INTEGER,
  outcome_time REAL
)""",
    "CREATE INDEX IF NOT EXISTS generations_time ON generations(time)",
)
_INSERT = (
    f"INSERT INTO generations ({', '.join(RECORD_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in RECORD_COLUMNS)})"
)
_values: Callable[[GenerationRecord], tuple[object, ...]] = attrgetter(*RECORD_COLUMNS)
_OUTCOME = (
    "UPDATE generations SET applied = coalesce(?, applied), "
    "accepted = coalesce(?, accepted), outcome_time = ? WHERE id = ?"
)


def default_db_path(setting: str = "", environ: Mapping[str, str] | None = None) -> Path:
    """Where the metrics live: the setting `telemetry.db` wins over $OCAML_AI_METRICS_DB
    (a project or editor that names a file means that file), else
    $XDG_DATA_HOME/ocaml-ai-ls/metrics.sqlite3 (XDG's default: ~/.local/share)."""
    env = os.environ if environ is None else environ
    if setting:
        return Path(setting).expanduser()
    if env.get(ENV_METRICS_DB):
        return Path(env[ENV_METRICS_DB]).expanduser()
    data = env.get("XDG_DATA_HOME") or ""
    base = Path(data) if os.path.isabs(data) else Path.home() / ".local" / "share"
    return base / "ocaml-ai-ls" / "metrics.sqlite3"


def workspace_hash(root: Path) -> str:
    """A short stable name for a workspace that does not reveal its path."""
    try:
        resolved = root.resolve()
    except OSError:
        resolved = root.absolute()
    return hashlib.blake2b(os.fsencode(resolved), digest_size=8).hexdigest()


@dataclass(frozen=True)
class _Outcome:
    request_id: str
    applied: bool | None
    accepted: bool | None
    time: float


#: Problems after which the connection is closed and opened again `RETRY_S` later.
_REOPEN = frozenset({"corrupt", "readonly", "io"})

_Item = GenerationRecord | _Outcome | threading.Event | None


def _warn_log(message: str) -> None:
    log.warning("%s", message)


class MetricsStore:
    """Records generations into one SQLite file from a writer thread.

    `warn` is called once per kind of problem (from the writer thread, or from
    the caller's when the queue is full) and must be thread-safe. Outcomes
    update rows this store wrote (the last `QUEUE_SIZE` request ids), so two
    servers that reuse request ids never touch each other's rows.
    """

    def __init__(
        self,
        path: Path,
        warn: Callable[[str], None] = _warn_log,
        *,
        store_prompts: bool = False,
        queue_size: int = QUEUE_SIZE,
        busy_timeout: float = BUSY_TIMEOUT_S,
    ) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        #: Keep prompts and answers (`telemetry.store_prompts`); may change at any time.
        self.store_prompts = store_prompts
        self._warn = warn
        self._warned: set[str] = set()
        self._warn_lock = threading.Lock()
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=queue_size)
        self._closed = False
        self._conn: sqlite3.Connection | None = None
        self._retry_at = 0.0
        self._busy = False
        self._rowids: LRUCache[str, int] = LRUCache(maxsize=QUEUE_SIZE)
        self._thread = threading.Thread(target=self._run, name="metrics-writer", daemon=True)
        self._thread.start()

    # -- the caller's side: a queue put, nothing else ------------------------

    def record(self, rec: GenerationRecord) -> None:
        """Queue one generation's row; returns at once and never raises."""
        if not self.store_prompts and (rec.prompt is not None or rec.answers is not None):
            rec = replace(rec, prompt=None, answers=None)  # prompts stay in memory only
        self._put(rec)

    def outcome(
        self, request_id: str, *, applied: bool | None = None, accepted: bool | None = None
    ) -> None:
        """Queue what became of a generation (the editor applied it; the user kept it)."""
        if applied is None and accepted is None:
            return
        self._put(_Outcome(request_id, applied, accepted, time.time()))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is written (or dropped); False on timeout."""
        if not self._thread.is_alive():
            return self._queue.empty()
        done = threading.Event()
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (for `timeout` seconds at most), then close the file."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _put(self, item: _Item) -> None:
        if self._closed:
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._problem(
                "queue",
                f"metrics: more than {self._queue.maxsize} rows are waiting to be written "
                f"to {self.path}; rows are dropped until the writer catches up.",
            )
        except Exception as exc:  # never the generation's problem
            self._problem("internal", f"metrics: cannot queue a row: {exc!r}")

    # -- the writer thread ---------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                self._write(item)
            except Exception as exc:  # the thread must outlive any bug
                self._problem("internal", f"metrics: writing to {self.path} failed: {exc!r}")
        # Events queued behind the sentinel (a flush racing close) are released too.
        while True:
            try:
                rest = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(rest, threading.Event):
                rest.set()
        self._disconnect()

    def _write(self, item: GenerationRecord | _Outcome) -> None:
        for attempt in range(BUSY_RETRIES + 1):
            last = attempt == BUSY_RETRIES
            started = time.monotonic()
            conn = self._connection(report_busy=last)
            if conn is None:
                if self._busy and not last:
                    time.sleep(0.05 * 2**attempt)
                    continue
                return  # the row is dropped; the problem was reported
            try:
                if isinstance(item, GenerationRecord):
                    cursor = conn.execute(_INSERT, _values(item))
                    if cursor.lastrowid is not None:
                        self._rowids[item.request_id] = cursor.lastrowid
                else:
                    rowid = self._rowids.get(item.request_id)
                    if rowid is not None:
                        conn.execute(_OUTCOME, (item.applied, item.accepted, item.time, rowid))
                return
            except sqlite3.Error as exc:
                waited = time.monotonic() - started >= self._busy_timeout / 2
                if _is_busy(exc) and not last and not waited:
                    time.sleep(0.05 * 2**attempt)
                    continue
                if self._sqlite_problem(exc) in _REOPEN:
                    self._disconnect()
                    self._retry_at = time.monotonic() + RETRY_S
                return

    def _connection(self, report_busy: bool = True) -> sqlite3.Connection | None:
        """The open connection, or None (the problem reported; `self._busy` says whether
        it was only busy, which is not reported unless `report_busy`)."""
        self._busy = False
        if self._conn is not None:
            return self._conn
        if time.monotonic() < self._retry_at:
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._retry_at = time.monotonic() + RETRY_S
            self._problem(
                "directory",
                f"metrics: cannot create the directory {self.path.parent} ({exc.strerror or exc}); "
                f"generations are not recorded. Set telemetry.db or {ENV_METRICS_DB} "
                "to a file in a writable directory.",
            )
            return None
        conn: sqlite3.Connection | None = None
        opening = time.monotonic()
        try:
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in SCHEMA:
                    conn.execute(statement)
                (version,) = conn.execute("PRAGMA user_version").fetchone()
                if version < SCHEMA_VERSION:
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            waited = time.monotonic() - opening >= self._busy_timeout / 2
            if _is_busy(exc) and not report_busy and not waited:
                self._busy = True
                return None
            kind = self._sqlite_problem(exc)
            self._retry_at = time.monotonic() + (0.0 if kind == "locked" else RETRY_S)
            return None
        self._conn = conn
        return conn

    def _disconnect(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def _sqlite_problem(self, exc: sqlite3.Error) -> str:
        """Report `exc` once per kind (named by what the user can do about it)."""
        code = getattr(exc, "sqlite_errorcode", -1) & 0xFF
        where = self.path
        if code in (5, 6):  # SQLITE_BUSY, SQLITE_LOCKED
            kind = "locked"
            message = (
                f"metrics: {where} stayed locked for more than {self._busy_timeout * 1000:.0f} ms "
                f"({exc}); that generation's row is dropped. Another program may hold it "
                "(servers share it safely; a long-running query or a database browser does not)."
            )
        elif code in (11, 26):  # SQLITE_CORRUPT, SQLITE_NOTADB
            kind = "corrupt"
            message = (
                f"metrics: {where} is not a SQLite database or is corrupt ({exc}); generations "
                "are not recorded. It is left untouched: delete or move it to start a new one, "
                f"or set telemetry.db or {ENV_METRICS_DB} to another file."
            )
        elif code in (3, 8, 14, 23):  # SQLITE_PERM, _READONLY, _CANTOPEN, _AUTH
            kind = "readonly"
            message = (
                f"metrics: cannot write {where} ({exc}); generations are not recorded. Make the "
                f"file and its directory writable, or set telemetry.db or {ENV_METRICS_DB} "
                "to another file."
            )
        elif code in (19, 20) or isinstance(exc, sqlite3.InterfaceError | sqlite3.ProgrammingError):
            kind = "row"  # SQLITE_CONSTRAINT, _MISMATCH, a value of a wrong type: this row only
            message = f"metrics: a row could not be written to {where} ({exc}); it is dropped."
        elif code == 10:  # SQLITE_IOERR
            kind = "io"
            message = f"metrics: cannot read or write {where} ({exc}); rows are dropped."
        elif code == 13:  # SQLITE_FULL
            kind = "full"
            message = (
                f"metrics: the disk holding {where} is full ({exc}); rows are dropped until "
                "there is space again."
            )
        else:
            kind = "sqlite"
            message = f"metrics: cannot write {where} ({exc}); rows are dropped."
        self._problem(kind, message)
        return kind

    def _problem(self, kind: str, message: str) -> None:
        with self._warn_lock:
            if kind in self._warned:
                return
            self._warned.add(kind)
        try:
            self._warn(message)
        except Exception:
            log.exception("metrics: the warning callback failed")


def _is_busy(exc: sqlite3.Error) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED: another connection has the file for now."""
    return (getattr(exc, "sqlite_errorcode", -1) & 0xFF) in (5, 6)
