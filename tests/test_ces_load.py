"""`ces serve` under load, as a real process: 200 POST /check from 80 concurrent
clients, every one answered (200, 400 or 503 with Retry-After), no connection
reset or refused, and the project's tree unchanged byte for byte.

One worker and a queue of 8, so the queue does fill and 503s are exercised.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from .test_ces import GOOD, TYPE_ERROR, Service, serving, tree_digest, write_project

REQUESTS, CLIENTS, QUEUE = 200, 80, 8
BAD = GOOD.replace("-let double x = 2 * x", "-let double x = 3 * x")  # does not apply


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    base = tmp_path_factory.mktemp("ces-load")
    root = write_project(base / "calc")
    with serving(root, base, "--workers", "1", "--queue", str(QUEUE)) as running:
        yield running


async def _load(url: str) -> list[httpx.Response]:
    bodies = [{"diff": (GOOD, TYPE_ERROR, BAD)[i % 3]} for i in range(REQUESTS)]
    todo: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    for body in bodies:
        todo.put_nowait(body)
    answers: list[httpx.Response] = []

    async def client() -> None:
        # one client (one connection, kept alive) per concurrent caller
        async with httpx.AsyncClient(base_url=url, timeout=120) as c:
            while not todo.empty():
                answers.append(await c.post("/check", json=todo.get_nowait()))

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return answers


def test_200_requests_from_80_clients_are_all_answered(service: Service) -> None:
    answers = asyncio.run(_load(service.url))  # a connection error fails the test here
    assert len(answers) == REQUESTS
    codes = Counter(r.status_code for r in answers)
    assert set(codes) <= {200, 400, 503}, codes
    assert codes[503] > 0, codes  # 80 callers against a queue of 8
    assert codes[200] > 0 and codes[400] > 0, codes
    for r in answers:
        if r.status_code == 503:
            assert int(r.headers["retry-after"]) >= 1
            assert "busy" in r.json()["error"]
        elif r.status_code == 200:
            assert r.json()["status"] in ("ok", "type_error")
        else:
            assert "closest lines" in r.json()["error"]
    metrics = httpx.get(f"{service.url}/metrics").json()
    assert metrics["rejected"] == codes[503]
    assert metrics["queued"] == 0
    assert tree_digest(service.root) == service.digest
    assert not (service.root / "_build").exists()


def test_the_answers_are_right_once_the_load_is_gone(service: Service) -> None:
    with httpx.Client(base_url=service.url, timeout=60) as c:
        assert c.post("/check", json={"diff": GOOD}).json()["status"] == "ok"
        assert c.post("/check", json={"diff": TYPE_ERROR}).json()["status"] == "type_error"
