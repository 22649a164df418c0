"""The files a request may read and edit, and the root nothing may leave.

Reads prefer the editor's open buffer over the disk; paths the model writes
are resolved against the workspace root and refused when they could lead out
of it (absolute, `..`, a symlink that points outside) or into build and VCS
directories.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .documents import DocumentStore
from .paths import SKIPPED_DIRS, is_inside
from .source_text import read_source
from .uris import path_to_uri

#: Files larger than this are not read (a generated file, not source).
MAX_FILE_BYTES = 2_000_000
#: Files whose presence marks a project root when the editor gives none.
ROOT_MARKERS = ("dune-project", ".git", ".ocaml-ai.toml")


class PathRefused(ValueError):
    """A path from the model that must not be read or written."""


@dataclass(frozen=True)
class FileText:
    """A file's current text and where it came from."""

    path: Path
    rel: str
    uri: str
    text: str
    #: The editor's version for an open buffer; None for a file read from disk.
    version: int | None

    @property
    def is_open(self) -> bool:
        return self.version is not None


def find_root(path: Path, folders: Sequence[Path] = ()) -> Path:
    """The workspace folder holding `path` (the innermost), else a marked ancestor."""
    holding = [f for f in folders if path == f or f in path.parents]
    if holding:
        return max(holding, key=lambda f: len(f.parts))
    for parent in path.parents:
        if is_project(parent):
            return parent
    return path.parent


def command_root(given: Path | None) -> Path:
    """A command's `--root`, else the project around the current directory (the nearest
    ancestor marked as a project, as for a file there)."""
    return (given if given is not None else find_root(Path.cwd() / "x")).resolve()


def is_project(root: Path) -> bool:
    """Whether a directory is marked as a project root (`dune-project`, `.git`, ...)."""
    return any((root / marker).exists() for marker in ROOT_MARKERS)


class Workspace:
    """Reads and resolves files under one root."""

    def __init__(self, root: Path, documents: DocumentStore) -> None:
        self.root = root
        self.documents = documents

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()

    def read(self, path: Path) -> FileText | None:
        """The open buffer's text, else the disk's; None if absent or unreadable."""
        uri = path_to_uri(path)
        doc = self.documents.get(uri)
        if doc is not None:
            return FileText(path, self.rel(path), uri, doc.text, doc.version)
        try:
            if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
                return None
            text = read_source(path)
        except OSError:
            return None
        return FileText(path, self.rel(path), uri, text, None)

    def resolve(self, written: str, default: Path, known: Iterable[str] = ()) -> Path:
        """The file a model means by `written`, or PathRefused saying why.

        An empty path means `default` (the request's file). A path that does
        not exist but is the tail of exactly one file in `known` (the files
        the model was shown) means that file.
        """
        if not written:
            return default
        if (
            "\0" in written
            or written.startswith(("/", "\\", "~"))
            or (len(written) > 1 and written[1] == ":")
        ):
            raise PathRefused(f"{written!r} is an absolute path; only paths inside the project")
        parts = [p for p in PurePosixPath(written.replace("\\", "/")).parts if p != "."]
        if not parts:
            raise PathRefused(f"{written!r} names no file")
        if ".." in parts:
            raise PathRefused(f"{written!r} goes up with '..'; only paths inside the project")
        if SKIPPED_DIRS.intersection(parts):
            raise PathRefused(f"{written!r} is in a build or version-control directory")
        rel = "/".join(parts)
        candidate = self.root.joinpath(*parts)
        if not candidate.exists():
            tails = sorted({k for k in known if k == rel or k.endswith("/" + rel)})
            if len(tails) == 1:
                candidate = self.root / tails[0]
        self._check_inside(candidate, written)
        if candidate.is_dir():
            raise PathRefused(f"{written!r} is a directory")
        return candidate

    def _check_inside(self, candidate: Path, written: str) -> None:
        if not is_inside(candidate, self.root):
            raise PathRefused(f"{written!r} leads outside the project (through a symlink)")
