"""`ocaml-ai.generate` on the example project against an instant local model server.

1. Server overhead of a 2-file edit, excluding model time, type-checking off
   (`candidates = 1`, `verify.shadows = 0`): the model answers at once with a
   SEARCH/REPLACE edit of `shapes.ml` and `shapes.mli`; overhead = round trip
   minus the model call as the server timed it. Target p50 < 100 ms (issue #2).
2. The default settings: 3 candidates (three different answers, one of them a
   type error) type-checked in the warm shadows of the dune project; round trip
   p50 and the server's verify time (issue #4). The first requests wait for the
   shadows to warm and are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from benchmarks._lsp import open_doc, row, start, stop
from tests.model_server import Reply, ScriptedModel

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "shapes"
ANSWER = """Non-negative areas, and the interface says so.

lib/shapes.ml
<<<<<<< SEARCH
  | Rect (w, h) -> w *. h
=======
  | Rect (w, h) -> abs_float (w *. h)
>>>>>>> REPLACE

lib/shapes.mli
<<<<<<< SEARCH
(** The area of a shape. *)
=======
(** The area of a shape, never negative. *)
>>>>>>> REPLACE
"""


async def _cancel_latency(client: LanguageClient, model: ScriptedModel, uri: str) -> float:
    """Milliseconds from $/cancelRequest until the model server sees the hang-up."""
    model.enqueue(Reply(answers="x" * 4000, chunk_size=2, chunk_delay=0.01))
    seen = len(model.requests)
    request = client.protocol.send_request_async(
        types.WORKSPACE_EXECUTE_COMMAND,
        types.ExecuteCommandParams(
            command="ocaml-ai.generate", arguments=[{"uri": uri, "instruction": "slow"}]
        ),
        msg_id=f"cancel-{seen}",
    )
    while len(model.requests) == seen:
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.1)
    before = len(model.disconnects)
    t0 = time.monotonic()
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=f"cancel-{seen}"))
    while len(model.disconnects) == before and time.monotonic() - t0 < 5:
        await asyncio.sleep(0.001)
    with contextlib.suppress(BaseException):
        await request
    return (model.disconnects[-1] - t0) * 1000 if len(model.disconnects) > before else 5000.0


#: Three answers for the verified scenario: two that type-check, one that does not.
ANSWERS = [
    ANSWER,
    ANSWER.replace("abs_float (w *. h)", "Float.abs (w *. h)"),
    ANSWER.replace("abs_float (w *. h)", "string_of_float (w *. h)"),
]
VERIFIED: dict[str, Any] = {"generate": {"candidates": 3}}
UNVERIFIED: dict[str, Any] = {"generate": {"candidates": 1}, "verify": {"shadows": 0}}


async def measure(rounds: int) -> None:
    await overhead(rounds)
    await verified(rounds)


async def _session(
    tmp: str, answers: list[str], settings: dict[str, Any]
) -> tuple[LanguageClient, ScriptedModel, str]:
    root = Path(tmp) / "shapes"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("_build"))
    model = ScriptedModel().start()
    model.set_default(Reply(answers=answers, chunk_size=64))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCAML_AI_")}
    env["OCAML_AI_BASE_URL"] = model.base_url
    client = await start(root, env, settings=settings)
    path = root / "lib" / "shapes.ml"
    return client, model, open_doc(client, path, path.read_text())


def _request(uri: str) -> types.ExecuteCommandParams:
    at = {"line": 8, "character": 4}
    arg = {
        "uri": uri,
        "instruction": "make rectangle areas non-negative",
        "range": {"start": at, "end": at},
    }
    return types.ExecuteCommandParams(command="ocaml-ai.generate", arguments=[arg])


async def verified(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        client, model, uri = await _session(tmp, ANSWERS, VERIFIED)
        total: list[float] = []
        verify_ms: list[float] = []
        for k in range(rounds + 3):
            t0 = time.perf_counter()
            result = await client.workspace_execute_command_async(_request(uri))
            elapsed = (time.perf_counter() - t0) * 1000
            assert isinstance(result, dict), result
            statuses = [c["verification"]["status"] for c in result["candidates"]]
            assert statuses == ["ok", "ok", "type_error"], statuses
            if k < 3:
                continue  # the shadows warm meanwhile
            total.append(elapsed)
            verify_ms.append(result["timings"]["verify_ms"])
        await stop(client)
        model.stop()
    print("ocaml-ai.generate, 3 candidates type-checked in 2 warm shadows, instant model")
    print(row("round trip", total))
    print(row("verify (parse, apply, type-check all 3)", verify_ms))


async def overhead(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        client, model, uri = await _session(tmp, [ANSWER], UNVERIFIED)
        overheads: list[float] = []
        total: list[float] = []
        model_ms: list[float] = []
        for k in range(rounds + 5):
            t0 = time.perf_counter()
            result = await client.workspace_execute_command_async(_request(uri))
            elapsed = (time.perf_counter() - t0) * 1000
            assert isinstance(result, dict) and len(result["candidates"]) == 1, result
            assert result["candidates"][0]["files"] == ["lib/shapes.ml", "lib/shapes.mli"]
            if k < 5:
                continue  # warm-up
            total.append(elapsed)
            model_ms.append(result["timings"]["model_ms"])
            overheads.append(elapsed - result["timings"]["model_ms"])
        cancel_ms = [await _cancel_latency(client, model, uri) for _ in range(10)]
        await stop(client)
        model.stop()
    print("ocaml-ai.generate, 2-file edit, instant local model, over stdio")
    print(row("round trip", total))
    print(row("model call (HTTP to 127.0.0.1)", model_ms))
    print(row("server overhead (round trip - model call)", overheads))
    print(row("$/cancelRequest to model stream closed", cancel_ms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(measure(args.rounds))


if __name__ == "__main__":
    main()
