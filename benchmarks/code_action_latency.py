"""`textDocument/codeAction` latency on a 5,000-line .ml file, over stdio.

Prints p50/p95 of the round trip (target p95 < 10 ms), at lines with and
without an instruction comment, and of a keystroke (didChange) followed by a
code action, which includes the incremental re-parse.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from lsprotocol import types

from benchmarks._lsp import NO_SHADOWS, open_doc, row, start, stop


def big_file(lines: int) -> str:
    """Realistic-looking OCaml: functions, types, comments, some instructions."""
    out: list[str] = []
    i = 0
    while len(out) < lines:
        if i % 25 == 0:
            out.append(f"(* ai: make f{i} tail recursive *)")
        out += [
            f"(** [f{i} xs] sums the elements of [xs] plus {i}. *)",
            f"let rec f{i} = function",
            "  | [] -> 0",
            f"  | x :: xs -> x + {i} + f{i} xs",
            "",
            f"type r{i} = {{ name : string; value : int; tags : string list }}",
            "",
        ]
        i += 1
    return "\n".join(out[:lines]) + "\n"


async def measure(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "dune-project").write_text("(lang dune 3.0)\n")
        text = big_file(5000)
        path = root / "big.ml"
        path.write_text(text)
        client = await start(root, settings=NO_SHADOWS)
        uri = open_doc(client, path, text)
        lines = text.splitlines()
        instruction_lines = [n for n, line in enumerate(lines) if line.startswith("(* ai:")]
        rng = random.Random(7)

        async def action_at(line: int, keystroke: int | None = None) -> float:
            """A code action at `line`, after typing a space there when `keystroke` is a version."""
            pos = types.Position(line=line, character=0)
            t0 = time.perf_counter()
            if keystroke is not None:
                client.text_document_did_change(
                    types.DidChangeTextDocumentParams(
                        text_document=types.VersionedTextDocumentIdentifier(
                            uri=uri, version=keystroke
                        ),
                        content_changes=[
                            types.TextDocumentContentChangePartial(
                                range=types.Range(start=pos, end=pos), text=" "
                            )
                        ],
                    )
                )
            await client.text_document_code_action_async(
                types.CodeActionParams(
                    text_document=types.TextDocumentIdentifier(uri=uri),
                    range=types.Range(start=pos, end=pos),
                    context=types.CodeActionContext(diagnostics=[]),
                )
            )
            return (time.perf_counter() - t0) * 1000

        for _ in range(20):  # warm up
            await action_at(rng.randrange(len(lines)))
        plain = [await action_at(rng.randrange(len(lines))) for _ in range(rounds)]
        with_comment = [await action_at(rng.choice(instruction_lines) + 1) for _ in range(rounds)]
        typed = [await action_at(rng.randrange(len(lines)), v) for v in range(2, rounds + 2)]
        await stop(client)
    print("codeAction on a 5,000-line .ml file over stdio")
    print(row("codeAction, no instruction nearby", plain))
    print(row("codeAction at an instruction comment", with_comment))
    print(row("keystroke (didChange) + codeAction", typed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(measure(args.rounds))


if __name__ == "__main__":
    main()
