"""The snapshot store: one bare git repository per workspace, one commit per snapshot.

A well-known format instead of a home-made one: anyone can `git log` or `git
checkout` the history. Everything is written by the `git` command itself (on
every machine that has a project; no library to install): the new blobs in
one `git fast-import`, the tree with `git update-index` on a temporary index
file and `git write-tree` (never a work tree), the commit with `git
commit-tree` (author and committer date: the snapshot's time; message: a
one-line summary, then the build state as JSON), and last the branch
`refs/heads/snapshots` with `git update-ref` given its old value. Objects are
content-addressed, so a file that did not change costs nothing; a snapshot
whose tree equals the last one's is not taken (computed in Python from
git-style blob hashes, so no git process runs when nothing changed).

Crash safety: objects are written before the ref, and the ref moves
atomically (git's lock file and rename), so a kill -9 at any point leaves a
readable store that lost at most the snapshot being taken. Writers hold an
`flock` on the store (also passed to their git children, so it outlives a
killed Python process until its git child is gone too); under it a leftover
lock file of git's or temporary index can only be a dead writer's, and is
removed.

Git runs with no system or global configuration (`GIT_CONFIG_NOSYSTEM`,
`GIT_CONFIG_GLOBAL=/dev/null`), none of the caller's `GIT_*` variables, a fixed
identity, and never prompts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time as _time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Any

from ..ignores import _ignored, _read_gitignore, walk_project
from ..paths import is_skipped_dir
from ..verify.result import CheckError
from ..workspace import MAX_FILE_BYTES

GREEN, RED, UNKNOWN = "green", "red", "unknown"

#: The branch holding the snapshots, oldest to newest.
REF = "refs/heads/snapshots"
#: Where `gc` builds the rewritten chain before the branch is moved to it.
GC_REF = "refs/ocaml-ai-ls/gc"
#: Files a snapshot holds: OCaml sources (lexers and parsers too) and dune's files.
SOURCE_SUFFIXES = (".ml", ".mli", ".mll", ".mly", ".opam")
SOURCE_NAMES = frozenset({"dune", "dune-project", "dune-workspace"})
#: Errors kept per build state (the first ones: later ones are mostly consequences).
MAX_ERRORS = 20
#: Characters kept of one error message.
MAX_MESSAGE = 2000
#: Bytes in a megabyte for `gc` (MiB, as `du -m` counts).
MEGABYTE = 1 << 20

#: The repository's own settings: loose objects (a disk block each) packed every
#: ~100 snapshots rather than git's ~1,500, in the writer's process, not detached.
_CONFIG = {"gc.auto": "512", "gc.autoDetach": "false"}
_IDENTITY = ("-c", "user.name=ocaml-ai-ls", "-c", "user.email=ocaml-ai-ls@localhost")
_NULL_SHA = "0" * 40
_INDEX_PREFIX = "ocaml-ai-ls-index-"
_FORMAT_KEY = "ocaml-ai-ls-snapshot"

# Secret-looking files, matched case-insensitively on the file name (and, for the
# words, on every directory of the path too). The words cost a module now and then
# (`secret_box.ml`, `password_hash.ml`): a snapshot that lacks such a module is a
# small loss, a key in the user data directory a real one. `token`, `key` and `auth`
# are not words here: lexers have `token.ml`, every project `keys` and `auth` code.
_SECRET_NAMES = frozenset(
    {
        ".env",
        ".netrc",
        ".npmrc",
        ".pypirc",
        ".pgpass",
        ".htpasswd",
        ".git-credentials",
        "credentials",
    }
)
_SECRET_PREFIXES = (".env.", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519")
_SECRET_SUFFIXES = (
    ".env",
    ".pem",
    ".key",
    ".p12",
    ".pfx",
    ".jks",
    ".keystore",
    ".kdbx",
    ".gpg",
    ".ovpn",
)
_SECRET_WORDS = (
    "secret",
    "credential",
    "password",
    "passwd",
    "private_key",
    "privatekey",
    "api_key",
    "apikey",
)


class StoreError(RuntimeError):
    """A git command of the store failed (the message says which and why)."""


class StoreBusy(StoreError):
    """Another process (a recorder, `snapshot gc`) holds the store longer than we wait."""


class StoreConflict(StoreError):
    """The branch moved while this snapshot was written (a writer that took no lock)."""


@dataclass(frozen=True)
class BuildState:
    """What the compiler said about a snapshot: green, red with its errors, or unknown
    (no compiler, a timeout; `errors` then says why)."""

    status: str
    errors: tuple[CheckError, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "errors": [asdict(e) for e in self.errors]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BuildState:
        known = {f.name for f in fields(CheckError)}
        errors = tuple(
            CheckError(**{k: v for k, v in e.items() if k in known})
            for e in data.get("errors") or ()
            if isinstance(e, Mapping)
        )
        status = data.get("status")
        return cls(status if status in (GREEN, RED, UNKNOWN) else UNKNOWN, errors)


@dataclass(frozen=True)
class Snapshot:
    #: The commit's sha.
    id: str
    #: Epoch seconds.
    time: float
    state: BuildState
    #: Relative paths changed since the previous snapshot (added, modified, deleted).
    changed: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "state": self.state.to_json(),
            "changed": list(self.changed),
        }


@dataclass(frozen=True)
class GcReport:
    #: The dropped snapshots' ids (oldest first), as they were before the rewrite.
    dropped: tuple[str, ...]
    #: Snapshots left.
    kept: int
    #: The store's objects on disk before and after, in bytes.
    bytes_before: int
    bytes_after: int


@dataclass(frozen=True)
class _Entry:
    """One commit of the branch, as `gc` rewrites it."""

    id: str
    tree: str
    author_time: int
    commit_time: int
    message: bytes


def is_source(rel: str) -> bool:
    """Whether a snapshot holds this file (by name: OCaml sources and dune's files)."""
    name = PurePosixPath(rel).name
    return name in SOURCE_NAMES or name.endswith(SOURCE_SUFFIXES)


def is_secret(rel: str) -> bool:
    """Whether a path looks like it holds secrets (`.env`, keys, credentials...)."""
    parts = rel.replace("\\", "/").lower().split("/")
    name = parts[-1]
    if name in _SECRET_NAMES or name.startswith(_SECRET_PREFIXES):
        return True
    if name.endswith(_SECRET_SUFFIXES):
        return True
    return any(word in part for part in parts for word in _SECRET_WORDS)


def source_files(root: Path, buffers: Mapping[str, str] | None = None) -> dict[str, bytes]:
    """The files a snapshot of `root` holds, by relative path: the project's files
    (`.gitignore`d ones, `_build`, `_opam` and hidden directories left out, as the
    index and the shadows leave them out) that are sources and not secret-looking;
    open buffers (relative path → text) over the disk."""
    out: dict[str, bytes] = {}
    for path, rel in walk_project(root):
        if not is_source(rel) or is_secret(rel):
            continue
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                continue
            out[rel] = path.read_bytes()
        except OSError:  # deleted meanwhile, unreadable: not part of this snapshot
            continue
    if buffers:
        ignored = _GitIgnored(root)
        for rel, text in buffers.items():
            admitted = _admissible(rel) and is_source(rel) and not is_secret(rel)
            if rel in out or (admitted and not ignored(rel)):
                out[rel] = text.encode("utf-8", "surrogateescape")
    return out


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_DATA_HOME/ocaml-ai-ls` (XDG's default: ~/.local/share), as the metrics use."""
    env = os.environ if environ is None else environ
    data = env.get("XDG_DATA_HOME") or ""
    base = Path(data) if os.path.isabs(data) else Path.home() / ".local" / "share"
    return base / "ocaml-ai-ls"


def store_path(root: Path, data_dir: Path | None = None) -> Path:
    """The bare repository of a workspace: named after the root and a hash of its path."""
    resolved = root.resolve()
    digest = hashlib.blake2b(str(resolved).encode(), digest_size=8).hexdigest()
    return (data_dir or default_data_dir()) / "snapshots" / f"{resolved.name}-{digest}.git"


def blob_id(data: bytes) -> str:
    """The id git gives a file's content (sha1 of `blob <size>\\0<data>`)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


class SnapshotStore:
    """The snapshots of one workspace root (created on the first `take`)."""

    def __init__(self, root: Path, data_dir: Path | None = None) -> None:
        self.root = root
        #: The bare repository.
        self.path = store_path(root, data_dir)
        #: The last head seen and its tree (relative path → blob id), so that a take
        #: with nothing changed runs no git process beyond `rev-parse`.
        self._head_tree: tuple[str, dict[str, str]] | None = None

    # -- reading ---------------------------------------------------------------

    def exists(self) -> bool:
        return (self.path / "HEAD").is_file()

    def head(self) -> str | None:
        """The newest snapshot's id, None when there is none."""
        if not self.exists():
            return None
        run = self._run(["rev-parse", "--verify", "-q", REF + "^{commit}"], check=False)
        if run.returncode != 0:
            return None
        return run.stdout.decode().strip() or None

    def differs(self, files: Mapping[str, bytes]) -> bool:
        """Whether `take(files, ...)` would store a snapshot (the tree is not the last one's)."""
        wanted = {rel: blob_id(data) for rel, data in self._admitted(files).items()}
        return wanted != self._tree_of_head(self.head())

    def log(self) -> list[Snapshot]:
        """Every snapshot, oldest first; [] when there is no store yet."""
        return [_snapshot(e) for e in self._entries()]

    def files(self, snapshot_id: str) -> dict[str, bytes]:
        """A snapshot's files by relative path."""
        tree = self._ls_tree(snapshot_id)
        if not tree:
            return {}
        ids = list(dict.fromkeys(tree.values()))
        out = self._git(["cat-file", "--batch"], input="".join(f"{i}\n" for i in ids).encode())
        contents: dict[str, bytes] = {}
        pos = 0
        for oid in ids:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            if len(header) != 3 or header[0].decode() != oid:
                raise StoreError(f"git cat-file: unexpected {out[pos:end]!r} for {oid}")
            size = int(header[2])
            contents[oid] = out[end + 1 : end + 1 + size]
            pos = end + 1 + size + 1
        return {rel: contents[oid] for rel, oid in tree.items()}

    def size(self) -> int:
        """Bytes the store's objects take on disk (loose and packed, garbage included)."""
        if not self.exists():
            return 0
        counts: dict[str, int] = {}
        for line in self._git(["count-objects", "-v"]).decode().splitlines():
            key, _, value = line.partition(":")
            with contextlib.suppress(ValueError):
                counts[key.strip()] = int(value)
        kib = counts.get("size", 0) + counts.get("size-pack", 0) + counts.get("size-garbage", 0)
        return kib * 1024

    # -- writing ---------------------------------------------------------------

    def take(
        self,
        files: Mapping[str, bytes],
        state: BuildState,
        time: float | None = None,
        *,
        wait: float = 30.0,
    ) -> Snapshot | None:
        """Store `files` (relative path → content) with their build state as the next
        snapshot; None when the tree is the last snapshot's. Ignored, build, hidden and
        secret-looking paths are left out whatever the caller passed. Waits up to `wait`
        seconds for another writer (then StoreBusy)."""
        when = _time.time() if time is None else time
        admitted = self._admitted(files)
        blobs = {rel: blob_id(data) for rel, data in admitted.items()}
        with self._lock(wait) as lock:
            self._ensure(lock)
            head = self.head()
            before = self._tree_of_head(head)
            if blobs == before:
                return None
            known = set(before.values())
            new = {oid: admitted[rel] for rel, oid in blobs.items() if oid not in known}
            if new:
                self._write_blobs(new, lock)
            tree = self._write_tree(blobs, lock)
            changed = tuple(
                sorted(r for r in before.keys() | blobs.keys() if before.get(r) != blobs.get(r))
            )
            state = _bounded(state)
            message = _message(when, state, changed)
            stamp = f"@{int(when)} +0000"
            commit = (
                self._git(
                    ["commit-tree", tree, *(["-p", head] if head else []), "-F", "-"],
                    input=message,
                    env={"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp},
                    lock=lock,
                )
                .decode()
                .strip()
            )
            moved = self._run(
                ["update-ref", "-m", "snapshot", REF, commit, head or _NULL_SHA],
                lock=lock,
                check=False,
            )
            if moved.returncode != 0:
                raise StoreConflict(f"{REF} moved meanwhile: {moved.stderr.decode().strip()}")
            self._head_tree = (commit, blobs)
            # Packs the loose objects every ~100 snapshots (`_CONFIG`); a few ms otherwise.
            self._run(["gc", "--auto", "--quiet"], lock=lock, check=False)
        return Snapshot(commit, when, state, changed)

    def gc(
        self,
        max_age_days: float,
        max_megabytes: float,
        *,
        now: float | None = None,
        wait: float = 60.0,
    ) -> GcReport:
        """Drop the snapshots older than `max_age_days`, then the oldest ones while the
        store is larger than `max_megabytes`; the newest one always stays. The kept
        ones are rewritten into a new chain (same trees, messages and dates), the
        branch moved to it, and what nothing reaches any more is pruned."""
        if not self.exists():
            return GcReport((), 0, 0, 0)
        now = _time.time() if now is None else now
        limit = max_megabytes * MEGABYTE
        with self._lock(wait) as lock:
            before = self.size()
            entries = self._entries()
            dropped: list[str] = []
            cutoff = now - max_age_days * 86400
            first = next((i for i, e in enumerate(entries) if _snapshot(e).time >= cutoff), None)
            first = len(entries) - 1 if first is None else first
            self._prune(lock)
            for _ in range(4):  # the size is estimated; a second round makes it right
                if entries and self.size() > limit:
                    first = max(first, self._cut_for_size(entries, first, limit))
                if first <= 0 or not entries:
                    break
                dropped += [e.id for e in entries[:first]]
                entries = self._rewrite(entries[first:], lock)
                self._prune(lock)
                first = 0
            self._head_tree = None
            return GcReport(tuple(dropped), len(entries), before, self.size())

    # -- internals -------------------------------------------------------------

    def _admitted(self, files: Mapping[str, bytes]) -> dict[str, bytes]:
        """`files` without the paths a snapshot must never hold (checked again here, not
        trusted from the caller): outside or odd, build/VCS/hidden directories,
        secret-looking, ignored by a `.gitignore` of the root."""
        ignored = _GitIgnored(self.root)
        return {
            rel: data
            for rel, data in files.items()
            if _admissible(rel) and not is_secret(rel) and not ignored(rel)
        }

    def _tree_of_head(self, head: str | None) -> dict[str, str]:
        if head is None:
            return {}
        if self._head_tree is None or self._head_tree[0] != head:
            self._head_tree = (head, self._ls_tree(head))
        return self._head_tree[1]

    def _ls_tree(self, treeish: str) -> dict[str, str]:
        out = self._git(["ls-tree", "-r", "-z", "--full-tree", treeish])
        tree: dict[str, str] = {}
        for item in out.split(b"\0"):
            if not item:
                continue
            meta, _, rel = item.partition(b"\t")
            _mode, kind, oid = meta.decode().split()
            if kind == "blob":
                tree[rel.decode("utf-8", "surrogateescape")] = oid
        return tree

    def _entries(self) -> list[_Entry]:
        if self.head() is None:
            return []
        out = self._git(["log", "-z", "--reverse", "--format=%H%x1f%T%x1f%at%x1f%ct%x1f%B", REF])
        entries: list[_Entry] = []
        for record in out.split(b"\0"):
            if not record.strip():
                continue
            sha, tree, at, ct, message = record.split(b"\x1f", 4)
            entries.append(_Entry(sha.decode(), tree.decode(), int(at), int(ct), message))
        return entries

    def _write_blobs(self, blobs: Mapping[str, bytes], lock: int) -> None:
        """New contents in one `git fast-import` (loose objects when they are few)."""
        stream = bytearray()
        for data in blobs.values():
            stream += b"blob\ndata %d\n" % len(data) + data + b"\n"
        stream += b"done\n"
        self._git(["fast-import", "--quiet", "--done"], input=bytes(stream), lock=lock)

    def _write_tree(self, blobs: Mapping[str, str], lock: int) -> str:
        """The tree of `blobs` (relative path → blob id), through a temporary index."""
        index = self.path / f"{_INDEX_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        lines = b"".join(
            f"100644 {oid}\t".encode() + rel.encode("utf-8", "surrogateescape") + b"\0"
            for rel, oid in sorted(blobs.items())
        )
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            self._git(["update-index", "-z", "--index-info"], input=lines, env=env, lock=lock)
            return self._git(["write-tree"], env=env, lock=lock).decode().strip()
        finally:
            index.unlink(missing_ok=True)

    def _rewrite(self, kept: list[_Entry], lock: int) -> list[_Entry]:
        """`kept` as a new chain (the first a root commit) in one `git fast-import`, then
        the branch moved to its tip; the new entries."""
        if not kept:
            return kept
        stream = bytearray(f"reset {GC_REF}\n".encode())
        who = "ocaml-ai-ls <ocaml-ai-ls@localhost>"
        for e in kept:
            stream += f"commit {GC_REF}\n".encode()
            stream += f"author {who} {e.author_time} +0000\n".encode()
            stream += f"committer {who} {e.commit_time} +0000\n".encode()
            stream += b"data %d\n" % len(e.message) + e.message + b"\n"
            stream += f'M 040000 {e.tree} ""\n\n'.encode()
        stream += b"done\n"
        self._git(["fast-import", "--quiet", "--force", "--done"], input=bytes(stream), lock=lock)
        ids = self._git(["rev-list", "--reverse", GC_REF]).decode().split()
        if len(ids) != len(kept):
            raise StoreError(f"gc: rewrote {len(ids)} snapshots of {len(kept)}")
        old_head = self.head() or _NULL_SHA
        moved = self._run(
            ["update-ref", "-m", "gc", REF, ids[-1], old_head], lock=lock, check=False
        )
        self._run(["update-ref", "-d", GC_REF], lock=lock, check=False)
        if moved.returncode != 0:
            raise StoreConflict(f"{REF} moved meanwhile: {moved.stderr.decode().strip()}")
        return [
            _Entry(i, e.tree, e.author_time, e.commit_time, e.message)
            for i, e in zip(ids, kept, strict=True)
        ]

    def _cut_for_size(self, entries: list[_Entry], first: int, limit: float) -> int:
        """The first snapshot to keep so that the kept ones take at most `limit` bytes, as
        `git rev-list --disk-usage` estimates them (packed: measured after `_prune`)."""
        lo, hi = first, len(entries) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self._usage(entries[mid:]) <= limit:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _usage(self, entries: list[_Entry]) -> int:
        commits = "".join(f"{e.id}\n" for e in entries).encode()
        out = self._git(
            ["rev-list", "--objects", "--no-walk", "--disk-usage", "--stdin"], input=commits
        )
        return int(out.decode().strip() or 0)

    def _prune(self, lock: int) -> None:
        """Pack what the branch reaches and delete everything else (kept nowhere else: a
        bare repository of ours has no other refs, reflogs or stashes)."""
        self._run(["reflog", "expire", "--expire=now", "--all"], lock=lock, check=False)
        self._git(["gc", "--prune=now", "--quiet"], lock=lock)

    def _ensure(self, lock: int) -> None:
        """Create the bare repository: in a temporary directory renamed into place, so a
        kill leaves either none or a whole one."""
        if self.exists():
            return
        for stale in self.path.parent.glob(f".{self.path.name}-*"):  # a killed creator's
            shutil.rmtree(stale, ignore_errors=True)
        temp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}-", dir=self.path.parent))
        try:
            self._run(
                [
                    "init",
                    "-q",
                    "--bare",
                    "--object-format=sha1",
                    "--initial-branch=snapshots",
                    str(temp),
                ],
                lock=lock,
                bare=False,
            )
            (temp / "description").write_text(f"ocaml-ai-ls snapshots of {self.root.resolve()}\n")
            for key, value in _CONFIG.items():
                self._run(["config", key, value], env={"GIT_DIR": str(temp)}, lock=lock, bare=False)
            try:
                os.rename(temp, self.path)  # onto nothing or an empty directory
            except OSError as exc:
                raise StoreError(f"{self.path} exists but is no git repository: {exc}") from None
        finally:
            shutil.rmtree(temp, ignore_errors=True)

    @contextlib.contextmanager
    def _lock(self, wait: float) -> Iterator[int]:
        """Hold the store's writer lock (an `flock`: a dead holder releases it), waiting up
        to `wait` seconds; clear what a dead writer left behind."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(
            self.path.with_name(self.path.name + ".lock"),
            os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
            0o600,
        )
        try:
            deadline = _time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if _time.monotonic() >= deadline:
                        raise StoreBusy(f"{self.path} is busy (another snapshot or gc)") from None
                    _time.sleep(0.05)
            self._clear_leftovers()
            yield fd
        finally:
            os.close(fd)

    def _clear_leftovers(self) -> None:
        """Under the lock, no other writer runs: git lock files and temporary indexes
        still there belong to a killed one."""
        for stale in (
            self.path / f"{REF}.lock",
            self.path / "packed-refs.lock",
            self.path / f"{GC_REF}.lock",
            *self.path.glob(f"{_INDEX_PREFIX}*"),
        ):
            with contextlib.suppress(OSError):
                stale.unlink()

    def _env(self, extra: Mapping[str, str] | None, bare: bool = True) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=os.devnull,
            GIT_TERMINAL_PROMPT="0",
            LC_ALL="C",
        )
        if bare:
            env["GIT_DIR"] = str(self.path)
        env.update(extra or {})
        return env

    def _run(
        self,
        args: list[str],
        *,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        lock: int | None = None,
        check: bool = True,
        bare: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        try:
            run = subprocess.run(
                ["git", *_IDENTITY, *args],
                input=input,
                capture_output=True,
                env=self._env(env, bare),
                cwd=self.path if bare else None,
                pass_fds=() if lock is None else (lock,),
                check=False,
            )
        except OSError as exc:  # no git on PATH
            raise StoreError(f"cannot run git: {exc}") from None
        if check and run.returncode != 0:
            err = run.stderr.decode(errors="replace").strip()
            raise StoreError(f"git {args[0]} failed ({run.returncode}): {err}")
        return run

    def _git(
        self,
        args: list[str],
        *,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        lock: int | None = None,
    ) -> bytes:
        return self._run(args, input=input, env=env, lock=lock).stdout


class _GitIgnored:
    """`.gitignore` rules of a root as `walk_project` applies them, each file read once
    (`ignores.counts` reads them for every file it is asked about)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._specs: dict[str, list[Any]] = {}
        self._dirs: dict[str, bool] = {"": False}

    def __call__(self, rel: str) -> bool:
        parts = rel.split("/")
        return self._dir_ignored(parts[:-1]) or bool(_ignored(self._in(parts[:-1]), rel))

    def _dir_ignored(self, dirs: list[str]) -> bool:
        """Whether a directory or one above it is ignored (as `walk_project` prunes)."""
        key = "/".join(dirs)
        if key not in self._dirs:
            self._dirs[key] = self._dir_ignored(dirs[:-1]) or bool(
                _ignored(self._in(dirs[:-1]), key + "/")
            )
        return self._dirs[key]

    def _in(self, dirs: list[str]) -> list[Any]:
        """The specs in force in a directory, shallow to deep."""
        key = "/".join(dirs)
        if key not in self._specs:
            specs = list(self._in(dirs[:-1])) if dirs else []
            ignore = self.root.joinpath(*dirs, ".gitignore")
            spec = _read_gitignore(ignore) if ignore.is_file() else None
            if spec is not None:
                specs.append((key, spec))
            self._specs[key] = specs
        return self._specs[key]


def _admissible(rel: str) -> bool:
    """A plain relative path whose directories are not build, VCS or hidden ones."""
    if not rel or "\0" in rel or "\\" in rel or rel.startswith("/"):
        return False
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return False
    return not any(is_skipped_dir(d) for d in parts[:-1])


def _bounded(state: BuildState) -> BuildState:
    """At most MAX_ERRORS errors of at most MAX_MESSAGE characters (a commit message)."""
    errors = tuple(
        e
        if len(e.message) <= MAX_MESSAGE
        else CheckError(**{**asdict(e), "message": e.message[:MAX_MESSAGE]})
        for e in state.errors[:MAX_ERRORS]
    )
    return BuildState(state.status, errors)


def _message(when: float, state: BuildState, changed: tuple[str, ...]) -> bytes:
    """A one-line summary (what `git log --oneline` shows), then the data as JSON."""
    payload = {
        _FORMAT_KEY: 1,
        "time": when,
        "state": state.to_json(),
        "changed": list(changed),
    }
    return f"{summary(state, changed)}\n\n{json.dumps(payload, sort_keys=True)}\n".encode()


def summary(state: BuildState, changed: tuple[str, ...], width: int = 72) -> str:
    """`3 files (a.ml, b.ml, c.ml): red lib/a.ml:3: This expression...`, on one line."""
    names = ", ".join(changed[:3]) + (", ..." if len(changed) > 3 else "")
    files = f"{len(changed)} file{'s' if len(changed) != 1 else ''} ({names})"
    line = f"{files}: {state.status}"
    if state.errors:
        line += " " + first_error(state)
    line = " ".join("".join(c if c.isprintable() else " " for c in line).split())
    return line if len(line) <= width else line[: width - 1] + "…"


def first_error(state: BuildState) -> str:
    """`path:line: message` of the first error (its first line), or ''."""
    if not state.errors:
        return ""
    e = state.errors[0]
    text = e.message.strip().splitlines()[0] if e.message.strip() else ""
    where = f"{e.path}:{e.line}: " if e.path else ""
    return where + text


def _snapshot(e: _Entry) -> Snapshot:
    """A commit read back: the JSON after the summary, the commit date as a fallback."""
    body = e.message.decode("utf-8", "replace")
    _, _, data = body.partition("\n\n")
    try:
        payload = json.loads(data)
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    when = payload.get("time")
    state = payload.get("state")
    changed = payload.get("changed")
    return Snapshot(
        e.id,
        float(when) if isinstance(when, int | float) else float(e.commit_time),
        BuildState.from_json(state) if isinstance(state, Mapping) else BuildState(UNKNOWN),
        tuple(c for c in changed if isinstance(c, str)) if isinstance(changed, list) else (),
    )
