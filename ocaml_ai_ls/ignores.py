"""Which files of a project count: not in build, VCS or hidden directories, not
ignored by a `.gitignore`, not behind a directory symlink.

The index (what the model may be shown) and the shadow builds (what the
compiler checks) walk the same files by the same rules, so what a candidate is
checked against is what the model saw.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

from pathspec import GitIgnoreSpec

from .paths import is_inside, is_skipped_dir

log = logging.getLogger(__name__)

#: `.gitignore` specs in force in a directory, shallow to deep, keyed by their directory.
_Specs = list[tuple[str, GitIgnoreSpec]]


def walk_project(root: Path) -> Iterator[tuple[Path, str]]:
    """Every file under `root` that counts, as (path, relative posix path), sorted per
    directory; a file symlink counts only when it stays inside the root."""
    specs: _Specs = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        rel_dir = here.relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        specs = [(d, s) for d, s in specs if d == "" or _under(rel_dir, d)]
        if ".gitignore" in filenames:
            spec = _read_gitignore(here / ".gitignore")
            if spec is not None:
                specs.append((rel_dir, spec))
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not is_skipped_dir(d) and not _ignored(specs, _join(rel_dir, d) + "/")
        )
        for name in sorted(filenames):
            rel = _join(rel_dir, name)
            if _ignored(specs, rel):
                continue
            path = here / name
            if path.is_symlink() and not is_inside(path, root):
                continue
            yield path, rel


def counts(root: Path, path: Path) -> bool:
    """Whether `walk_project(root)` would list `path` (for one file an editor's watcher
    reports: watchers see `_build` copies and ignored files too)."""
    if not is_inside(path, root):
        return False
    try:
        rel = path.relative_to(root)
    except ValueError:
        return False
    *dirs, name = rel.parts
    if any(is_skipped_dir(d) for d in dirs):
        return False
    specs: _Specs = []
    prefix = ""
    for d in ["", *dirs]:
        prefix = _join(prefix, d) if d else prefix
        ignore = root / prefix / ".gitignore"
        spec = _read_gitignore(ignore) if ignore.is_file() else None
        if spec is not None:
            specs.append((prefix, spec))
        if d and _ignored(specs, prefix + "/"):
            return False
    return not _ignored(specs, _join(prefix, name))


def _join(rel_dir: str, name: str) -> str:
    return f"{rel_dir}/{name}" if rel_dir else name


def _under(rel: str, d: str) -> bool:
    return rel == d or rel.startswith(d + "/")


def _read_gitignore(path: Path) -> GitIgnoreSpec | None:
    try:
        return GitIgnoreSpec.from_lines(
            path.read_text(encoding="utf-8", errors="replace").splitlines()
        )
    except (OSError, ValueError) as exc:
        log.info("ignoring %s: %s", path, exc)
        return None


def _ignored(specs: _Specs, rel: str) -> bool:
    """Whether `rel` is ignored: as in git, the deepest `.gitignore` with a rule
    for it decides (so `!keep.ml` below can undo `*.ml` above)."""
    ignored = False
    for base, spec in specs:  # shallow to deep
        inner = rel[len(base) + 1 :] if base else rel
        include = spec.check_file(inner).include
        if include is not None:
            ignored = include
    return ignored
