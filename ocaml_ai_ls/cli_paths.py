"""Path arguments of the command line, made absolute once, when they are parsed.

A relative path given to a command means the current directory's, wherever it is
used later: in a `file:` URI (which has no relative form), in a working copy made
elsewhere, or by a server started in another directory. Resolving at parse time
keeps every subcommand from having to remember it.
"""

from __future__ import annotations

from pathlib import Path


def absolute_path(value: str) -> Path:
    """An argparse type: `value` (`~` expanded) against the current directory, symlinks
    resolved as everywhere else (`--root`, `PATH[:LINE]`), so the URIs the server
    sees for a file are the same whichever way the user named it."""
    return Path(value).expanduser().resolve()
