"""File URIs to paths and back (pygls does the percent-encoding rules)."""

from __future__ import annotations

from pathlib import Path

from pygls.uris import from_fs_path, to_fs_path


def uri_to_path(uri: str) -> Path | None:
    """The local path of a `file:` URI, or None for any other scheme."""
    if not uri.startswith("file:"):
        return None
    path = to_fs_path(uri)
    return Path(path) if path else None


def path_to_uri(path: Path) -> str:
    uri = from_fs_path(str(path))
    assert uri is not None
    return str(uri)
