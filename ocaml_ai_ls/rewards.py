"""Rewards for a trainer, graded by the compiler (CES) on each row's "before" state.

TRL calls a reward function as `fn(prompts=..., completions=..., **columns)` and
wants one float per completion. A completion is a string or a list of message
dicts (conversational datasets: the last message's content is the answer); the
`provenance` column of `dataset export`'s rows says how to rebuild the before
state (a project directory and overrides of its files) and whether the task has
tests. Each completion is parsed and applied as the pipeline would, then checked:

| reward | the completion |
|---|---|
| 0.0 | gives no usable edit (nothing parses as an edit, it does not apply, or it changes nothing) |
| 0.25 | applies |
| 0.5 | parses (tree-sitter) |
| 0.75 | type-checks (warnings-only builds count, as in `eval`) |
| 1.0 | passes: the tests where the row has tests, else it type-checks |

1.0 is exactly what `eval` counts as passed (its `_judge`), so a mean reward of a
scripted model's answers and `eval`'s pass rate agree on what passes.

The checks run in warm shadows of the project (`verify/engine.py`, one engine per
project, `workers` shadows each) or on a `ces serve` URL (`POST /check`, so trainers
on many machines share one CES; the project must be checked out where the reward
runs, for the files the overrides do not hold). A batch is graded concurrently,
`workers` completions at a time.

`ces_reward` is configured from the environment (`OCAML_AI_CES_URL`, else a local
pool with `OCAML_AI_CES_WORKERS` shadows, default 2); `make_reward(...)` gives one
with explicit settings.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .eval.tasks import safe_relative
from .verify.diffs import BadDiff, answer_files
from .verify.engine import CheckEngine
from .verify.result import OK, PARSE_ERROR, TEST_FAILURE, WARNING
from .verify.syntax import check_syntax

log = logging.getLogger(__name__)

NO_EDIT, APPLIES, PARSES, TYPECHECKS, PASSES = 0.0, 0.25, 0.5, 0.75, 1.0
#: Seconds one dune run may take.
DEFAULT_TIMEOUT = 60.0
#: Times a busy (503) or unreachable service is asked again, with a growing pause.
RETRIES = 5


def completion_text(completion: Any) -> str:
    """The answer in a completion: a string, or the last message of a list of message
    dicts (TRL's conversational format); "" for anything else."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion:
        last = completion[-1]
        if isinstance(last, Mapping) and isinstance(last.get("content"), str):
            return str(last["content"])
    if isinstance(completion, Mapping) and isinstance(completion.get("content"), str):
        return str(completion["content"])
    return ""


@dataclass(frozen=True)
class BeforeState:
    """What a row's provenance says about its before state."""

    project: Path
    files: Mapping[str, str | None]
    target: str | None
    typecheck: bool
    tests: bool

    @classmethod
    def of(cls, provenance: Mapping[str, Any]) -> BeforeState:
        project = provenance.get("project")
        if not isinstance(project, str) or not project:
            raise ValueError("the row's provenance names no project")
        files: dict[str, str | None] = {}
        for item in provenance.get("files") or []:
            path = item.get("path") if isinstance(item, Mapping) else None
            rel = safe_relative(path) if isinstance(path, str) else None
            if rel is None:  # never a write outside the project's shadow
                raise ValueError(f"the row's provenance has a bad file path: {path!r}")
            text = item.get("text")
            files[rel] = text if isinstance(text, str) else None
        location = provenance.get("location")
        target = location.get("path") if isinstance(location, Mapping) else None
        return cls(
            Path(project),
            files,
            target if isinstance(target, str) else None,
            bool(provenance.get("typecheck", True)),
            bool(provenance.get("tests", False)),
        )


def score(status: str, state: BeforeState, tests: bool) -> float:
    """The reward of a verification status (see the module docstring)."""
    if status == PARSE_ERROR:
        return APPLIES
    if not state.typecheck and not tests:
        return PASSES  # as `eval`: a task asking for no check passes on a parsing edit
    if status == OK or (status == WARNING and not tests):
        return PASSES
    if status in (WARNING, TEST_FAILURE):
        return TYPECHECKS
    return PARSES


class Grader:
    """Grades completions against rows' before states, locally or through `ces serve`.

    `url`: a `ces serve` URL (its root must be the rows' project); else local shadow
    pools, one per project, `workers` shadows each. `tests`: None takes each row's
    `tests`, True or False overrides it. `root` overrides the rows' project directory
    (where the project is checked out on this machine).
    """

    def __init__(
        self,
        url: str | None = None,
        workers: int = 2,
        timeout: float = DEFAULT_TIMEOUT,
        tests: bool | None = None,
        root: Path | None = None,
        profile: str = "dev",
    ) -> None:
        self.url = url.rstrip("/") if url else None
        self.workers = max(1, workers)
        self.timeout = timeout
        self.tests = tests
        self.root = root
        self.profile = profile
        self._engines: dict[Path, CheckEngine] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ces-reward")
        self._http = httpx.Client(timeout=httpx.Timeout(timeout * 3 + 30)) if url else None

    def grade(self, completion: Any, provenance: Mapping[str, Any]) -> float:
        """One completion's reward; never raises (a broken row or check gives 0.0 and a
        log line)."""
        try:
            return self._grade(completion_text(completion), BeforeState.of(provenance))
        except Exception as exc:
            log.warning("reward: could not grade a completion: %s", exc)
            return NO_EDIT

    def grade_batch(
        self, completions: Sequence[Any], provenances: Sequence[Mapping[str, Any]]
    ) -> list[float]:
        """The rewards of a batch, `workers` checks at a time, in order."""
        if len(completions) != len(provenances):
            raise ValueError(f"{len(completions)} completions but {len(provenances)} rows")
        return list(self._pool.map(self.grade, completions, provenances))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for engine in self._engines.values():
            engine.close()
        self._engines.clear()
        if self._http is not None:
            self._http.close()

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one completion --------------------------------------------------------------

    def _grade(self, answer: str, state: BeforeState) -> float:
        project = self.root or state.project
        try:
            files = answer_files(answer, project, state.files, state.target)
        except BadDiff:
            return NO_EDIT
        if all(state.files.get(p, _absent(project, p)) == t for p, t in files.items()):
            return NO_EDIT  # the answer changes nothing
        tests = state.tests if self.tests is None else self.tests
        if not state.typecheck and not tests:
            texts = [(p, t) for p, t in files.items() if t is not None]
            return score(check_syntax(texts).status, state, tests)
        if self.url is not None:
            status = self._remote(files, project, tests)
        else:
            status = self._engine(project).check(files, tests).status
        return score(status, state, tests)

    def _engine(self, project: Path) -> CheckEngine:
        key = project.resolve()
        with self._lock:
            engine = self._engines.get(key)
            if engine is None:
                engine = CheckEngine(key, self.workers, self.timeout, profile=self.profile)
                engine.warm(lambda done, total: None)
                self._engines[key] = engine
            return engine

    def _remote(self, files: Mapping[str, str | None], project: Path, tests: bool) -> str:
        # a deletion of a file the project does not have is no change: not sent
        items = [
            {"path": p, "text": t}
            for p, t in sorted(files.items())
            if t is not None or (project / p).exists()
        ]
        assert self._http is not None
        for attempt in range(RETRIES + 1):
            try:
                reply = self._http.post(f"{self.url}/check", json={"diff": items, "tests": tests})
            except httpx.TransportError:
                if attempt == RETRIES:
                    raise
                time.sleep(0.2 * 2**attempt)
                continue
            if reply.status_code == 503 and attempt < RETRIES:
                time.sleep(float(reply.headers.get("Retry-After", "1")))
                continue
            body = reply.json()
            if reply.status_code != 200 or not isinstance(body.get("status"), str):
                raise RuntimeError(f"ces answered {reply.status_code}: {body.get('error', body)}")
            return str(body["status"])
        raise RuntimeError("ces stayed busy")


def _absent(project: Path, rel: str) -> str | None:
    """The file's text on disk (None: absent), for files the overrides do not hold."""
    try:
        return (project / rel).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


RewardFunction = Callable[..., list[float]]


def make_reward(grader: Grader, name: str = "ces_reward") -> RewardFunction:
    """A reward function for TRL over `grader`; the dataset's `provenance` column
    arrives as a keyword argument, one entry per completion."""

    def reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
        provenance = kwargs.get("provenance")
        if provenance is None:
            raise ValueError("the rows have no `provenance` column (see `dataset export`)")
        return grader.grade_batch(completions, provenance)

    reward.__name__ = name
    reward.__qualname__ = name
    return reward


_default: Grader | None = None
_default_lock = threading.Lock()


def default_grader() -> Grader:
    """The grader `ces_reward` uses, made on first use from the environment."""
    global _default
    with _default_lock:
        if _default is None:
            url = os.environ.get("OCAML_AI_CES_URL") or None
            workers = int(os.environ.get("OCAML_AI_CES_WORKERS", "2"))
            _default = Grader(url=url, workers=workers)
        return _default


def ces_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """TRL's reward signature over the default grader (see the module docstring)."""
    return make_reward(default_grader())(completions, **kwargs)
