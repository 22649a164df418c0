"""The settings of `ocaml-ai-ls ces` (serve and check) and their validation.

Kept apart from the service so the command line can show the defaults
without importing the checker.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

HOST = "127.0.0.1"
DEFAULT_PORT = 8642
DEFAULT_WORKERS = 2
DEFAULT_TIMEOUT = 60.0
MAX_WORKERS = 16
#: A request body larger than this is refused unread (a diff, not a tarball).
MAX_BODY_BYTES = 5_000_000
#: Checks waiting or running at once by default; more are refused with 503 rather
#: than hang (`--queue`).
MAX_QUEUED = 64
#: The largest `--queue` (each admitted check holds a thread while it waits).
QUEUE_LIMIT = 1024
#: Seconds a client may take to send its request (a stalled one frees its thread).
CLIENT_TIMEOUT = 30.0


class CesUsageError(Exception):
    """Settings the service cannot run with (exit status 2); the message says why."""


@dataclass(frozen=True)
class CesOptions:
    root: Path
    workers: int = DEFAULT_WORKERS
    timeout: float = DEFAULT_TIMEOUT
    #: Run `dune test` after a clean build when a request does not say.
    tests: bool = False
    #: The dune profile candidates are built with (`dev`: warnings are errors).
    profile: str = "dev"
    #: `ces serve`: checks waiting or running at once before a 503.
    queue: int = MAX_QUEUED
    #: `ces check`: run the checks on Ray actors (`auto` or a cluster's address).
    ray: str | None = None


def validate(options: CesOptions) -> CesOptions:
    """The options with the root resolved, or CesUsageError."""
    root = options.root.expanduser().resolve()
    if not root.is_dir():
        raise CesUsageError(f"{options.root} is not a directory")
    if not (root / "dune-project").is_file():
        raise CesUsageError(f"{root} has no dune-project (ces checks dune projects)")
    if not 1 <= options.workers <= MAX_WORKERS:
        raise CesUsageError(f"--workers must be between 1 and {MAX_WORKERS}")
    if not 0 < options.timeout <= 3600:
        raise CesUsageError("--timeout must be in (0, 3600] seconds")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", options.profile):
        raise CesUsageError("--profile must be a dune profile name such as dev or release")
    if not 1 <= options.queue <= QUEUE_LIMIT:
        raise CesUsageError(f"--queue must be between 1 and {QUEUE_LIMIT}")
    if shutil.which("dune") is None:
        raise CesUsageError("dune is not on PATH")
    return replace(options, root=root)
