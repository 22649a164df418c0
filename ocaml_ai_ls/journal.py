"""All-or-nothing writes of several files, for `ocaml-ai-ls edit --apply`.

An editor applies a WorkspaceEdit as one step; a terminal command killed half way
through writing must not leave a project half old and half new, nor temporary files
in it. So every new text is written first, outside the project, with a journal of the
files (hashes before and after); the journal is committed, and only then are the
files replaced, each by a rename. The next command on the project (`edit`, the
server's start, `recover`) settles a journal left by a killed process: a committed
one is finished, any other rolled back. A file whose text is neither the journal's
old nor its new one was changed by someone since: then nothing is touched, the
texts are kept, and the message says where.

Under `$XDG_STATE_HOME/ocaml-ai-ls/journal/<root's name>-<hash of its path>/`:

    lock                  flock'ed while writing or settling (one at a time per root)
    txn-<id>/journal.json the files, hashes, modes; state prepared|committed|rolling-back
    txn-<id>/new-<i>-<name>, old-<i>-<name>   the texts after and before
    unsettled/txn-<id>/   a journal that could not be settled, kept with its texts
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .paths import is_inside

log = logging.getLogger(__name__)

#: Seconds a write waits for another process writing to the same root.
LOCK_WAIT = 10.0
#: Files named in a message before "and N more".
NAMED = 4
#: Tests only: kill this process (SIGKILL) when it reaches the step of this name.
_STOP_AT = os.environ.get("OCAML_AI_LS_STOP_AT", "")

#: A file's bytes by path, None when there is no such file.
Reader = Callable[[Path], bytes | None]


class WriteRefused(Exception):
    """Nothing of the edit was written; the message says why."""


class _Busy(Exception):
    """Another process holds the root's lock."""


@dataclass(frozen=True)
class Recovery:
    """What was done about an interrupted write: one line for the user."""

    message: str
    #: False when the files were left as they are (a file changed since, or an error).
    settled: bool


@dataclass(frozen=True)
class _Entry:
    """One file of a journal: where, and the hashes of its text before and after."""

    rel: str
    before: str | None  # sha256 of the old text; None: the file did not exist
    after: str | None  # sha256 of the new text; None: the edit deletes the file


def _step(name: str) -> None:
    if name == _STOP_AT:
        os.kill(os.getpid(), signal.SIGKILL)


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_STATE_HOME/ocaml-ai-ls` (XDG's default: ~/.local/state): state that must
    outlive the process but is neither data to keep nor a cache to drop."""
    env = os.environ if environ is None else environ
    state = env.get("XDG_STATE_HOME") or ""
    base = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "ocaml-ai-ls"


def journal_dir(root: Path) -> Path:
    """The journal directory of a project root (named like the snapshot store's)."""
    real = Path(os.path.realpath(root))
    digest = hashlib.blake2b(str(real).encode(), digest_size=8).hexdigest()
    return state_dir() / "journal" / f"{real.name}-{digest}"


def _hash(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise WriteRefused(f"{path} is a directory") from None


def _current(path: Path) -> str | None:
    """The hash of a file as it is now; a directory matches no hash."""
    try:
        return _hash(path.read_bytes())
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return "a directory"


@contextlib.contextmanager
def _locked(home: Path, wait: float) -> Iterator[None]:
    """Hold the root's lock; _Busy after `wait` seconds. The kernel drops it when the
    process dies, so a journal found while holding it belongs to nobody alive."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(home / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _Busy from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes, mode: int | None = None) -> None:
    """A new file, on disk before this returns; `mode` None: 0o666 less the umask."""
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as fh:
        fh.write(data)
        fh.flush()
        if mode is not None:
            os.fchmod(fh.fileno(), mode)
        os.fsync(fh.fileno())


def _new_name(i: int, rel: str) -> str:
    return f"new-{i}-{rel.rsplit('/', 1)[-1]}"


def _old_name(i: int, rel: str) -> str:
    return f"old-{i}-{rel.rsplit('/', 1)[-1]}"


def _tree_tmp(target: Path, txn_id: str) -> Path:
    """The temporary file beside `target`, used only when the journal is on another
    filesystem; named after the journal so that settling it removes the file."""
    return target.with_name(f".{target.name}.ocaml-ai-ls-{txn_id}.tmp")


def _install(src: Path, target: Path, txn_id: str) -> None:
    """Replace `target` by `src` in one rename; across filesystems, by a copy beside
    the target first (the rename within its directory is the atomic step)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(src, target)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    tmp = _tree_tmp(target, txn_id)
    tmp.unlink(missing_ok=True)
    _write_file(tmp, src.read_bytes(), os.stat(src).st_mode & 0o7777)
    _step("copied")
    os.rename(tmp, target)


class _Journal:
    """A journal on disk: its directory and contents."""

    def __init__(self, txn: Path, data: dict[str, Any]) -> None:
        self.txn = txn
        self.data = data
        self.id: str = data["id"]
        self.entries = [_Entry(f["rel"], f["before"], f["after"]) for f in data["files"]]

    @classmethod
    def load(cls, txn: Path) -> _Journal | None:
        """None when there is no journal file: killed before it was written (nothing
        was written in the project) or after it was dropped (everything was).
        ValueError for one that cannot be read."""
        try:
            text = (txn / "journal.json").read_text()
        except FileNotFoundError:
            return None
        try:
            return cls(txn, json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"unreadable journal {txn}: {exc}") from None

    @property
    def state(self) -> str:
        return str(self.data["state"])

    def save(self, state: str) -> None:
        """Change the state in one rename (the commit point is this rename)."""
        self.data["state"] = state
        tmp = self.txn / "journal.json.tmp"
        tmp.unlink(missing_ok=True)
        _write_file(tmp, json.dumps(self.data, indent=1).encode())
        os.rename(tmp, self.txn / "journal.json")
        _fsync_dir(self.txn)

    def drop(self) -> None:
        """Forget the journal: its file first (the decision), then the texts."""
        (self.txn / "journal.json").unlink(missing_ok=True)
        _step("dropped")
        shutil.rmtree(self.txn, ignore_errors=True)

    def names(self, entries: Iterable[_Entry] | None = None) -> str:
        rels = [e.rel for e in (self.entries if entries is None else entries)]
        shown = ", ".join(rels[:NAMED])
        return shown + (f" and {len(rels) - NAMED} more" if len(rels) > NAMED else "")


def write_all(
    root: Path,
    plan: Callable[[Reader], Mapping[Path, bytes | None]],
    wait: float = LOCK_WAIT,
) -> Recovery | None:
    """Write the files `plan` returns (new bytes, or None to delete) all or nothing.

    `plan` reads the files it needs through its argument, under the root's lock, so
    two writers on one project never base an edit on a text the other is replacing.
    An interrupted earlier write is settled first and returned; WriteRefused when
    nothing was written.
    """
    root = Path(os.path.realpath(root))
    home = journal_dir(root)
    try:
        with _locked(home, wait):
            earlier = _settle_all(root, home)
            seen: dict[Path, bytes | None] = {}

            def read(path: Path) -> bytes | None:
                real = Path(os.path.realpath(path))
                if real not in seen:
                    seen[real] = _read(real)
                return seen[real]

            changes = plan(read)
            files: dict[str, tuple[bytes | None, bytes | None]] = {}
            for path, new in changes.items():
                real = Path(os.path.realpath(path))
                if not is_inside(real, root) or real == root:
                    raise WriteRefused(f"{path} is outside {root}")
                rel = real.relative_to(root).as_posix()
                if rel in files:
                    raise WriteRefused(f"{path} is written twice (through a link?)")
                old = read(real)
                if old != new:
                    files[rel] = (old, new)
            if files:
                _write(root, home, files)
            return earlier
    except _Busy:
        raise WriteRefused(f"another ocaml-ai-ls is writing to {root}; try again") from None


def _write(root: Path, home: Path, files: dict[str, tuple[bytes | None, bytes | None]]) -> None:
    txn_id = f"{time.time_ns():x}-{os.getpid()}"
    txn = home / f"txn-{txn_id}"
    txn.mkdir(mode=0o700)
    journal = _Journal(
        txn,
        {
            "version": 1,
            "id": txn_id,
            "root": str(root),
            "state": "prepared",
            "files": [
                {"rel": rel, "before": _hash(old), "after": _hash(new)}
                for rel, (old, new) in files.items()
            ],
            "dirs": _missing_dirs(
                root, [rel for rel, (_, new) in files.items() if new is not None]
            ),
        },
    )
    try:
        journal.save("prepared")
        _step("prepared")
        for i, (rel, (old, new)) in enumerate(files.items()):
            target = root / rel
            if old is not None:
                _write_file(txn / _old_name(i, rel), old, os.stat(target).st_mode & 0o7777)
            if new is not None:
                mode = os.stat(target).st_mode & 0o7777 if old is not None else None
                _write_file(txn / _new_name(i, rel), new, mode)
        _fsync_dir(txn)
        _step("staged")
        journal.save("committed")
    except OSError as exc:  # a full disk, say: no file of the project was touched
        shutil.rmtree(txn, ignore_errors=True)
        raise WriteRefused(
            f"cannot write the journal in {home}: {exc}; nothing was written"
        ) from exc
    _step("committed")
    placed = 0
    try:
        for i, entry in enumerate(journal.entries):
            target = root / entry.rel
            if _current(target) != entry.before:
                raise WriteRefused(f"{entry.rel} changed while the edit was being written")
            placed += 1  # from here on, the file may be new
            _place(journal, i, entry, target)
            _step(f"replaced-{i + 1}")
        _fsync_dirs(root, journal.entries)
    except Exception as exc:
        undone = _settle(root, home, journal, placed=placed)
        reason = str(exc) if isinstance(exc, WriteRefused) else f"cannot write: {exc}"
        if not undone.settled:
            raise WriteRefused(f"{reason}; {undone.message}") from exc
        raise WriteRefused(f"{reason}; every file is as it was") from exc
    _step("finished")
    journal.drop()


def _missing_dirs(root: Path, rels: list[str]) -> list[str]:
    """The directories the new files need that do not exist yet (parents first), so a
    roll back can remove them again."""
    missing: set[str] = set()
    for rel in rels:
        parent = (root / rel).parent
        while parent != root and not parent.exists():
            missing.add(parent.relative_to(root).as_posix())
            parent = parent.parent
    return sorted(missing, key=lambda d: (d.count("/"), d))


def _place(journal: _Journal, i: int, entry: _Entry, target: Path) -> None:
    """Give `target` its new text (or delete it)."""
    if entry.after is None:
        target.unlink(missing_ok=True)
    else:
        _install(journal.txn / _new_name(i, entry.rel), target, journal.id)


def _restore(journal: _Journal, i: int, entry: _Entry, target: Path) -> None:
    """Give `target` its old text back (or delete a file the edit created); the kept
    old text stays in the journal until it is dropped, so this can be redone."""
    if entry.before is None:
        target.unlink(missing_ok=True)
        return
    copy = journal.txn / f"back-{i}"
    copy.unlink(missing_ok=True)
    old = journal.txn / _old_name(i, entry.rel)
    _write_file(copy, old.read_bytes(), os.stat(old).st_mode & 0o7777)
    _install(copy, target, journal.id)


def _fsync_dirs(root: Path, entries: Iterable[_Entry]) -> None:
    """Make the renames durable before the journal that could redo them is dropped."""
    for parent in {(root / e.rel).parent for e in entries}:
        with contextlib.suppress(FileNotFoundError):
            _fsync_dir(parent)


def _settle_all(root: Path, home: Path) -> Recovery | None:
    """Settle every journal of the root (at most one, unless settling failed before)."""
    done: list[Recovery] = []
    for txn in sorted(home.glob("txn-*")):
        try:
            journal = _Journal.load(txn)
        except ValueError as exc:
            kept = _set_aside(home, txn)
            done.append(Recovery(f"{exc}; left every file as it is, kept it in {kept}", False))
            continue
        if journal is None:
            shutil.rmtree(txn, ignore_errors=True)
            continue
        done.append(_settle(root, home, journal))
    if not done:
        return None
    return Recovery("; ".join(r.message for r in done), all(r.settled for r in done))


def _settle(root: Path, home: Path, journal: _Journal, placed: int | None = None) -> Recovery:
    """Finish a committed journal, roll back any other; never overwrite a file that is
    at neither of the journal's texts. The caller holds the lock.

    `placed`: the writer itself rolls back after a failure, knowing that only its
    first `placed` files may have been replaced (a later one that changed meanwhile
    was never touched, so it does not stop the roll back)."""
    where = f"an `edit --apply` in {root} was interrupted"
    try:
        for entry in journal.entries:
            _tree_tmp(root / entry.rel, journal.id).unlink(missing_ok=True)
        if journal.state == "prepared":  # no file of the project was touched yet
            journal.drop()
            return Recovery(f"{where}; rolled it back: {journal.names()} are as before", True)
        now = {e.rel: _current(root / e.rel) for e in journal.entries}
        touched = journal.entries if placed is None else journal.entries[:placed]
        changed = [e for e in touched if now[e.rel] not in (e.before, e.after)]
        if changed:
            kept = _set_aside(home, journal.txn)
            return Recovery(
                f"{where} and {journal.names(changed)} changed since; every file is left "
                f"as it is (neither finished nor rolled back); the texts from before the "
                f"edit, and its new texts not yet written, are kept in {kept}",
                False,
            )
        forward = journal.state == "committed" and placed is None
        if forward and not _staged(journal, now):
            forward = False
        if not forward and journal.state != "rolling-back":
            journal.save("rolling-back")
        for i, entry in enumerate(journal.entries):
            target = root / entry.rel
            if forward and now[entry.rel] == entry.before:
                _place(journal, i, entry, target)
            elif not forward and now[entry.rel] == entry.after and i < len(touched):
                _restore(journal, i, entry, target)
            _step(f"settled-{i + 1}")
        if not forward:
            for rel in reversed(journal.data.get("dirs", [])):
                with contextlib.suppress(OSError):
                    (root / rel).rmdir()
        _fsync_dirs(root, journal.entries)
        journal.drop()
    except OSError as exc:
        return Recovery(f"{where}; settling it failed (tried again next time): {exc}", False)
    if forward:
        return Recovery(f"{where}; finished it: {journal.names()} have the new text", True)
    return Recovery(f"{where}; rolled it back: {journal.names()} are as before", True)


def _staged(journal: _Journal, now: Mapping[str, str | None]) -> bool:
    """Whether every file still to be replaced has its new text, intact, in the journal."""
    for i, entry in enumerate(journal.entries):
        if entry.after is None or now[entry.rel] == entry.after:
            continue
        try:
            data = (journal.txn / _new_name(i, entry.rel)).read_bytes()
        except OSError:
            return False
        if _hash(data) != entry.after:
            return False
    return True


def _set_aside(home: Path, txn: Path) -> Path:
    """Move a journal that cannot be settled out of the way, texts and all: nothing is
    lost, and the next command does not trip over it again."""
    kept = home / "unsettled" / txn.name
    kept.parent.mkdir(parents=True, exist_ok=True)
    os.rename(txn, kept)
    return kept


def recover(root: Path, wait: float = 0.0) -> Recovery | None:
    """Finish or roll back an interrupted write to `root`; None when there was none.

    Cheap when there is nothing (one stat). With `wait` 0, a root whose lock is held
    is left alone: its writer is alive and settles its own journal.
    """
    root = Path(os.path.realpath(root))
    home = journal_dir(root)
    if not home.is_dir():
        return None
    try:
        with _locked(home, wait):
            return _settle_all(root, home)
    except _Busy:
        if wait <= 0:
            return None
        return Recovery(f"another ocaml-ai-ls is writing to {root}; try again", False)
    except OSError as exc:  # an unwritable state directory, say: never a crash at start
        return Recovery(f"cannot look for an interrupted `edit --apply` in {home}: {exc}", False)


def recover_roots(roots: Iterable[Path]) -> list[Recovery]:
    """`recover` for each workspace root of the server, each outcome logged."""
    done: list[Recovery] = []
    for root in roots:
        result = recover(root)
        if result is not None:
            log.warning("%s", result.message)
            done.append(result)
    return done
