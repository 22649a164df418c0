"""Requests whose params do not fit their method, sent as raw JSON-RPC to the real
server over stdio: each is answered with InvalidParams (-32602) and a message, and
the server goes on answering (pygls 2.1 alone never answers them: the client waits
forever)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ocaml_ai_ls.uris import path_to_uri
from tests.editor import server_env

INVALID_PARAMS = -32602
#: Seconds a request may take to be answered (a hang is what the test is about).
ANSWER_SECONDS = 10


class RawClient:
    """JSON-RPC over the server's stdin and stdout, nothing checked on our side."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.answers: dict[int | str, asyncio.Future[dict[str, Any]]] = {}
        self.notifications: list[dict[str, Any]] = []
        self._reader = asyncio.ensure_future(self._read())

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    async def request(self, msg_id: int | str, method: str, **params: Any) -> dict[str, Any]:
        """Send a request (`params` as given: absent, null, of any type) and await its answer."""
        future = self.answers.setdefault(msg_id, asyncio.get_running_loop().create_future())
        self.send({"id": msg_id, "method": method, **params})
        return await asyncio.wait_for(future, ANSWER_SECONDS)

    async def _read(self) -> None:
        out = self.process.stdout
        assert out is not None
        while True:
            length = 0
            while (line := await out.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if not line:
                return
            message = json.loads(await out.readexactly(length))
            if "method" in message and "id" in message:  # a request of the server's
                self.send({"id": message["id"], "result": None})
            elif "method" in message:
                self.notifications.append(message)
            else:
                future = self.answers.setdefault(
                    message["id"], asyncio.get_running_loop().create_future()
                )
                if not future.done():
                    future.set_result(message)

    async def close(self) -> int:
        self._reader.cancel()
        if self.process.returncode is None:
            self.process.kill()
        return await self.process.wait()


@pytest.fixture
async def raw(project: Path) -> AsyncIterator[RawClient]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ocaml_ai_ls",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=server_env("http://127.0.0.1:9/v1"),
    )
    client = RawClient(process)
    try:
        yield client
    finally:
        await client.close()


def initialize(root: Path) -> dict[str, Any]:
    return {"params": {"processId": None, "rootUri": path_to_uri(root), "capabilities": {}}}


def code_action_params(uri: str, line: int, character: int) -> dict[str, Any]:
    pos = {"line": line, "character": character}
    return {
        "textDocument": {"uri": uri},
        "range": {"start": pos, "end": {"line": 0, "character": 0}},
        "context": {"diagnostics": []},
    }


def assert_invalid_params(answer: dict[str, Any], method: str) -> None:
    assert "result" not in answer, answer
    assert answer["error"]["code"] == INVALID_PARAMS, answer
    assert method in answer["error"]["message"], answer


async def test_requests_with_bad_params_are_answered_with_invalid_params(
    raw: RawClient, project: Path
) -> None:
    # before any initialize: an initialize that is not one is refused, then a good one
    bad_init = await raw.request("init-bad", "initialize", params={"capabilities": 5})
    assert_invalid_params(bad_init, "initialize")
    assert "capabilities" in bad_init["error"]["message"]
    good_init = await raw.request("init", "initialize", **initialize(project))
    assert "capabilities" in good_init["result"]
    raw.send({"method": "initialized", "params": {}})

    uri = path_to_uri(project / "lib" / "shapes.ml")
    action = "textDocument/codeAction"
    bad: list[tuple[str, dict[str, Any]]] = [
        (action, {}),  # no params at all
        (action, {"params": None}),
        (action, {"params": [1, 2]}),
        (action, {"params": {"textDocument": 5, "range": "x", "context": []}}),
        (action, {"params": {**code_action_params(uri, 0, 0), "range": {"start": 1}}}),
        (action, {"params": code_action_params(uri, -1, 0)}),
        (action, {"params": code_action_params(uri, 0, -3)}),
        ("codeAction/resolve", {}),
        ("codeAction/resolve", {"params": "AI: something"}),
        ("codeAction/resolve", {"params": {"kind": "refactor"}}),  # no title
        ("workspace/executeCommand", {}),
        ("workspace/executeCommand", {"params": {"arguments": [{}]}}),  # no command
        ("workspace/executeCommand", {"params": {"command": "ocaml-ai.generate", "arguments": 7}}),
    ]
    for k, (method, params) in enumerate(bad):
        answer = await raw.request(k, method, **params)
        assert_invalid_params(answer, method)
    # the message says what did not fit, where, with the names the client wrote
    wrong = {"textDocument": [uri], "range": code_action_params(uri, 0, 0)["range"], "context": {}}
    typed = await raw.request("wrong", action, params=wrong)
    assert "params.textDocument" in typed["error"]["message"]
    negative = await raw.request("negative", action, params=code_action_params(uri, -1, 0))
    assert "range.start" in negative["error"]["message"]
    assert "should be in range" in negative["error"]["message"]

    # the server is still serving: a good request gets its (empty) answer
    fine = await raw.request("fine", action, params=code_action_params(uri, 0, 0))
    assert fine == {"jsonrpc": "2.0", "id": "fine", "result": None}
    shutdown = await raw.request("bye", "shutdown")
    assert "error" not in shutdown
    raw.send({"method": "exit"})
    assert await asyncio.wait_for(raw.process.wait(), ANSWER_SECONDS) == 0
