"""Server overhead of `ocaml-ai.generate` for a 2-file edit, excluding model time.

A local model server answers instantly (non-streamed) with a SEARCH/REPLACE
edit of `shapes.ml` and `shapes.mli`. Overhead = round trip of the command
minus the model call as the server timed it. Target p50 < 100 ms.
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


async def measure(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "shapes"
        shutil.copytree(EXAMPLE, root)
        model = ScriptedModel().start()
        model.set_default(Reply(answers=ANSWER, chunk_size=64))
        env = {k: v for k, v in os.environ.items() if not k.startswith("OCAML_AI_")}
        env["OCAML_AI_BASE_URL"] = model.base_url
        client = await start(root, env)
        path = root / "lib" / "shapes.ml"
        uri = open_doc(client, path, path.read_text())
        overhead: list[float] = []
        total: list[float] = []
        model_ms: list[float] = []
        for k in range(rounds + 5):
            arg = {
                "uri": uri,
                "instruction": "make rectangle areas non-negative",
                "range": {
                    "start": {"line": 8, "character": 4},
                    "end": {"line": 8, "character": 4},
                },
            }
            t0 = time.perf_counter()
            result = await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="ocaml-ai.generate", arguments=[arg])
            )
            elapsed = (time.perf_counter() - t0) * 1000
            assert isinstance(result, dict) and len(result["candidates"]) == 1, result
            assert result["candidates"][0]["files"] == ["lib/shapes.ml", "lib/shapes.mli"]
            if k < 5:
                continue  # warm-up
            total.append(elapsed)
            model_ms.append(result["timings"]["model_ms"])
            overhead.append(elapsed - result["timings"]["model_ms"])
        cancel_ms = [await _cancel_latency(client, model, uri) for _ in range(10)]
        await stop(client)
        model.stop()
    print("ocaml-ai.generate, 2-file edit, instant local model, over stdio")
    print(row("round trip", total))
    print(row("model call (HTTP to 127.0.0.1)", model_ms))
    print(row("server overhead (round trip - model call)", overhead))
    print(row("$/cancelRequest to model stream closed", cancel_ms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(measure(args.rounds))


if __name__ == "__main__":
    main()
