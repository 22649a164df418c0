"""CES workers as Ray actors, for checks spread over machines (`--ray auto|ADDRESS`).

Each actor is one worker with warm shadows of its own: it is sent the project's
files once (through Ray's object store: the nodes need not share a disk),
writes them to a directory of its node, and checks there with the same
`CheckEngine` as the local path (one shadow per project), so its answers are the
local path's. An actor checks one candidate at a time; the driver hands each
check to the least busy actor, preferring one that holds the project warm.

Ray is an optional extra (`ocaml-ai-ls[ray]`) and imported only here, when asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..ignores import walk_project
from .engine import CheckEngine
from .result import Verification

log = logging.getLogger(__name__)

#: A project as sent to the actors: relative path → (bytes, permission bits).
ProjectFiles = dict[str, tuple[bytes, int]]


class RayUnavailable(Exception):
    """Ray is not installed, or the cluster cannot be reached or is too small."""


def snapshot(root: Path) -> ProjectFiles:
    """The files a shadow of `root` mirrors (ignored ones and `_build` left out)."""
    files: ProjectFiles = {}
    for path, rel in walk_project(root):
        if path.is_file():
            files[rel] = (path.read_bytes(), path.stat().st_mode & 0o777)
    return files


def connect(address: str) -> Any:
    """The `ray` module, connected: `auto` joins the cluster `RAY_ADDRESS` or `ray start`
    names, else starts a local Ray for this process; anything else is a cluster's address.
    A Ray already initialized in this process (a test, a notebook) is used as it is."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--ray needs Ray: pip install 'ocaml-ai-ls[ray]'") from None
    if not ray.is_initialized():
        try:
            ray.init(
                address=None if address == "auto" else address,
                include_dashboard=False,
                log_to_driver=False,  # the actors' output must not mix with our JSON lines
                logging_level=logging.WARNING,
            )
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise RayUnavailable(f"cannot connect to Ray at {address}: {exc}") from None
    return ray


class CesActor:
    """One Ray worker: warm shadows of the projects it was sent, checking one at a time."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="ocaml-ai-ls-ray-"))
        self.engines: dict[str, CheckEngine] = {}

    def load(self, key: str, source: list[Any], name: str, timeout: float, profile: str) -> bool:
        """Write the project (`source`: [ObjectRef of its files], nested so Ray fetches
        it only here, once) and warm its shadow; True when it was not loaded yet."""
        if key in self.engines:
            return False
        import ray

        files: ProjectFiles = ray.get(source[0])
        root = self.base / key / name
        for rel, (data, mode) in files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(mode)
        engine = CheckEngine(root, 1, timeout, cache=self.base / key / "shadows", profile=profile)
        engine.warm(lambda done, total: None)
        self.engines[key] = engine
        return True

    def check(
        self,
        key: str,
        source: list[Any],
        project: tuple[str, float, str],
        files: Mapping[str, str | None],
        tests: bool,
        syntax: bool,
    ) -> dict[str, Any]:
        """`{"verification": ...}`, or `{"error": ...}` as the local path words it."""
        try:
            self.load(key, source, *project)
            result = self.engines[key].check(files, tests, syntax=syntax)
        except Exception as exc:
            log.exception("check failed")
            return {"error": f"the check failed: {type(exc).__name__}: {exc}"}
        return {"verification": result.to_json()}

    def drop(self, key: str) -> None:
        engine = self.engines.pop(key, None)
        if engine is not None:
            engine.close()
        shutil.rmtree(self.base / key, ignore_errors=True)

    def close(self) -> None:
        for key in list(self.engines):
            self.drop(key)
        shutil.rmtree(self.base, ignore_errors=True)


@dataclass(frozen=True)
class _Project:
    ref: Any
    name: str
    timeout: float
    profile: str


class RayWorkers:
    """`workers` CesActors on the cluster at `address`, and the projects sent to them."""

    def __init__(self, address: str, workers: int) -> None:
        self.ray = connect(address)
        cpus = int(self.ray.cluster_resources().get("CPU", 0))
        if workers > cpus:
            raise RayUnavailable(
                f"the Ray cluster has {cpus} CPU(s); ask for at most that many workers"
            )
        actor = self.ray.remote(num_cpus=1)(CesActor)
        self.actors: list[Any] = [actor.remote() for _ in range(workers)]
        self._busy = [0] * workers
        self._holds: list[set[str]] = [set() for _ in range(workers)]
        self._projects: dict[str, _Project] = {}

    def add_project(self, root: Path, timeout: float, profile: str) -> str:
        """Send the project at `root` as it is now to the object store; its key."""
        key = uuid.uuid4().hex[:12]
        ref = self.ray.put(snapshot(root))
        self._projects[key] = _Project(ref, root.name, timeout, profile)
        return key

    def _args(self, key: str) -> tuple[list[Any], tuple[str, float, str]]:
        p = self._projects[key]
        return [p.ref], (p.name, p.timeout, p.profile)

    async def warm(self, key: str, count: int) -> None:
        """Load and warm the project on the `count` least busy actors."""
        source, project = self._args(key)
        chosen = sorted(range(len(self.actors)), key=lambda i: self._busy[i])[:count]
        await asyncio.gather(*(self.actors[i].load.remote(key, source, *project) for i in chosen))
        for i in chosen:
            self._holds[i].add(key)

    def _pick(self, key: str) -> int:
        return min(
            range(len(self.actors)), key=lambda i: (self._busy[i], key not in self._holds[i])
        )

    async def check(
        self, key: str, files: Mapping[str, str | None], tests: bool, syntax: bool = False
    ) -> Verification:
        """One check on the least busy actor; a failed check raises, as locally."""
        i = self._pick(key)
        self._busy[i] += 1
        source, project = self._args(key)
        try:
            answer = await self.actors[i].check.remote(
                key, source, project, dict(files), tests, syntax
            )
        finally:
            self._busy[i] -= 1
        self._holds[i].add(key)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return Verification.from_json(answer["verification"])

    def check_all(
        self, key: str, jobs: Sequence[tuple[Mapping[str, str | None], bool]]
    ) -> Iterator[dict[str, Any]]:
        """Answers to every job in order (`{"verification"}` or `{"error"}`), each actor
        taking the next job when it is done with one."""
        from ray.util import ActorPool

        source, project = self._args(key)
        pool = ActorPool(self.actors)
        answers: Iterator[dict[str, Any]] = pool.map(
            lambda a, job: a.check.remote(key, source, project, dict(job[0]), job[1], True),
            list(jobs),
        )
        return answers

    def drop(self, key: str) -> None:
        """The project is done: its shadows and copies go (no waiting)."""
        self._projects.pop(key, None)
        for i, actor in enumerate(self.actors):
            if key in self._holds[i]:
                self._holds[i].discard(key)
                actor.drop.remote(key)

    def close(self) -> None:
        """Let each actor remove its directories, then end the actors."""
        with contextlib.suppress(Exception):
            self.ray.get([a.close.remote() for a in self.actors], timeout=30)
        for actor in self.actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor)
        self.actors.clear()
