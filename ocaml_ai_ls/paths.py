"""Which paths count: inside the root (symlinks resolved), not in a build, VCS or
hidden directory. The lowest layer: the index, the shadow builds, the snapshot
store and the workspace all ask it, and it asks nothing of them.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Directories whose files are never read into a prompt nor edited.
SKIPPED_DIRS = frozenset({".git", "_build", "_opam", "node_modules", ".hg", ".svn"})


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/ocaml-ai-ls` (default ~/.cache): what may be dropped and made
    again (the shadow builds, the index's stored summaries), never in a workspace."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ocaml-ai-ls"


def is_skipped_dir(name: str) -> bool:
    """A directory never read for context, never mirrored, never edited: build, VCS, hidden."""
    return name in SKIPPED_DIRS or name.startswith(".")


def is_inside(path: Path, root: Path) -> bool:
    """Whether `path`, symlinks resolved (existing or not), stays under `root`."""
    real, real_root = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    return real == real_root or real_root in real.parents
