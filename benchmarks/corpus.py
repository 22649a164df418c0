"""Small real commits of the OCaml projects in `../shared/corpora`, as benchmark cases.

A case is a non-merge commit that touches 1-3 `.ml`/`.mli` files and changes
1-100 of their lines in all, taken newest first from the bundle's head: the
state before is its parent, the instruction its subject, the cursor the
old-side start line of the first hunk of the first changed `.ml` file (else
`.mli`) that exists before, plus 3, clipped to the file. Bundles are cloned
into `benchmarks/.cache/` (gitignored) and never committed.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
CORPORA = HERE.parent.parent / "shared" / "corpora"
PROJECTS = ("lwt", "base", "ocaml-containers")
MAX_FILES = 3
MAX_LINES = 100
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def clone(project: str, corpora: Path = CORPORA) -> Path:
    """The project's clone under `benchmarks/.cache/`, made from its bundle once."""
    repo = CACHE / "corpora" / project
    if not (repo / ".git").exists():
        bundle = corpora / f"{project}.bundle"
        if not bundle.exists():
            raise SystemExit(f"no bundle {bundle}: see ../shared/corpora/README.md")
        repo.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "clone", "-q", "--no-checkout", str(bundle), str(repo)], check=True)
    return repo


@dataclass(frozen=True)
class Hunk:
    old_start: int
    added: tuple[str, ...]


@dataclass(frozen=True)
class FileDiff:
    old: str | None  # None: the file is new
    new: str | None  # None: the file is deleted
    hunks: tuple[Hunk, ...]


@dataclass(frozen=True)
class Case:
    """One commit: the state before, the instruction, where the cursor is."""

    project: str
    commit: str
    parent: str
    subject: str
    files: tuple[FileDiff, ...]
    target: str
    line: int  # 1-based, in the target's old text

    @property
    def added(self) -> Iterator[str]:
        for f in self.files:
            for h in f.hunks:
                yield from h.added


def _source(path: str) -> bool:
    return path.endswith((".ml", ".mli"))


def parse_diff(text: str) -> list[FileDiff]:
    """`git diff` output (no renames) as files with their hunks' old starts and added lines."""
    files: list[FileDiff] = []
    old: str | None = None
    new: str | None = None
    hunks: list[Hunk] = []
    added: list[str] = []
    start = 0
    in_hunk = False

    def close_hunk() -> None:
        nonlocal added, in_hunk
        if in_hunk:
            hunks.append(Hunk(start, tuple(added)))
        added, in_hunk = [], False

    def close_file() -> None:
        nonlocal hunks
        close_hunk()
        if old is not None or new is not None:
            files.append(FileDiff(old, new, tuple(hunks)))
        hunks = []

    for line in text.splitlines():
        if line.startswith("diff --git "):
            close_file()
            old = new = None
        elif line.startswith("--- ") and not in_hunk:
            old = None if line[4:] == "/dev/null" else line[6:]
        elif line.startswith("+++ ") and not in_hunk:
            new = None if line[4:] == "/dev/null" else line[6:]
        elif (m := _HUNK.match(line)) is not None:
            close_hunk()
            start, in_hunk = int(m.group(1)), True
        elif in_hunk and line.startswith("+"):
            added.append(line[1:])
    close_file()
    return files


def cases(project: str, limit: int, repo: Path | None = None) -> list[Case]:
    """The newest `limit` qualifying commits of a project, newest first."""
    repo = repo or clone(project)
    out: list[Case] = []
    log = git(repo, "log", "--no-merges", "--first-parent", "--format=%x00%H %P%x00%s", "--numstat")
    for record in _records(log):
        if len(out) >= limit:
            break
        ids, subject, numstat = record
        if len(ids) < 2:
            continue  # the root commit has no state before
        changed = 0
        sources = 0
        for row in numstat:
            a, d, path = row.split("\t", 2)
            if not _source(path) or "=>" in path:
                continue
            if a == "-":
                changed = MAX_LINES + 1
                break
            sources += 1
            changed += int(a) + int(d)
        if not (1 <= sources <= MAX_FILES and 1 <= changed <= MAX_LINES):
            continue
        commit, parent = ids[0], ids[1]
        diff = git(repo, "diff", "--no-renames", "-U3", parent, commit, "--", "*.ml", "*.mli")
        files = parse_diff(diff)
        target = _target(files)
        if target is None:
            continue
        path, old_start = target
        lines = git(repo, "show", f"{parent}:{path}").count("\n") or 1
        line = min(max(old_start + 3, 1), lines)
        out.append(Case(project, commit, parent, subject, tuple(files), path, line))
    return out


def _records(log: str) -> Iterator[tuple[list[str], str, list[str]]]:
    """(commit and parents, subject, numstat rows) per commit of `git log` output."""
    parts = log.split("\0")[1:]
    for i in range(0, len(parts) - 1, 2):
        ids = parts[i].split()
        subject, *rest = parts[i + 1].split("\n")
        yield ids, subject, [r for r in rest if r.strip()]


def _target(files: list[FileDiff]) -> tuple[str, int] | None:
    """The first changed `.ml` file that existed before (else `.mli`) and its first hunk."""
    for suffix in (".ml", ".mli"):
        for f in files:
            if f.old is not None and f.old.endswith(suffix) and f.hunks:
                return f.old, f.hunks[0].old_start
    return None


def checkout(repo: Path, commit: str, into: Path) -> Path:
    """The tree of `commit` in a work tree of its own (reused: only changed files move)."""
    if not (into / ".git").exists():
        into.parent.mkdir(parents=True, exist_ok=True)
        git(repo, "worktree", "prune")
        git(repo, "worktree", "add", "-q", "--force", "--detach", str(into), commit)
    else:
        git(into, "checkout", "-q", "-f", "--detach", commit)
        git(into, "clean", "-q", "-ffdx")
    return into
