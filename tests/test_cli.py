"""The command line: TCP serving and argument errors."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

from lsprotocol import types
from pygls.lsp.client import LanguageClient


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_serves_lsp_over_tcp() -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "ocaml_ai_ls", "--tcp", f"127.0.0.1:{port}"],
        stderr=subprocess.DEVNULL,
    )
    client = LanguageClient("t", "0")
    try:
        for _ in range(100):
            try:
                await client.start_tcp("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.05)
        result = await asyncio.wait_for(
            client.initialize_async(
                types.InitializeParams(capabilities=types.ClientCapabilities())
            ),
            10,
        )
        assert result.capabilities.execute_command_provider is not None
        assert "ocaml-ai.generate" in result.capabilities.execute_command_provider.commands
        assert result.capabilities.code_action_provider is not None
    finally:
        server.kill()  # first: the client's reader ends when the connection closes
        server.wait()
        await asyncio.wait_for(client.stop(), 10)


def test_bad_arguments_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ocaml_ai_ls", "--tcp", "nowhere"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "HOST:PORT" in done.stderr


def test_the_command_line_imports_no_command_it_does_not_run() -> None:
    """Building the parser (every run of every command does) stays light: the
    pipeline, the eval runner, the dataset exporter, the HTTP stack of `ces serve`
    and Ray are imported by the commands that use them, not by `edit` or `serve`."""
    probe = (
        "import sys\n"
        "from ocaml_ai_ls.cli import _parser\n"
        "_parser(snapshot=False).parse_args(['edit', 'a.ml', 'x'])\n"
        "heavy = ['ocaml_ai_ls.pipeline', 'ocaml_ai_ls.eval.runner', "
        "'ocaml_ai_ls.dataset.export', 'ocaml_ai_ls.snapshots.recorder', "
        "'uvicorn', 'starlette', 'ray', 'lsprotocol.types']\n"
        "print(' '.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []
