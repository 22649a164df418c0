"""A bare LSP session with the real server over stdio, for the benchmarks."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from ocaml_ai_ls.uris import path_to_uri

CAPABILITIES = types.ClientCapabilities(
    workspace=types.WorkspaceClientCapabilities(
        apply_edit=True,
        workspace_edit=types.WorkspaceEditClientCapabilities(
            document_changes=True, resource_operations=[types.ResourceOperationKind.Create]
        ),
    ),
    text_document=types.TextDocumentClientCapabilities(
        code_action=types.CodeActionClientCapabilities(
            data_support=True,
            resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]),
        )
    ),
)


#: Settings for a benchmark of something else than verification: no dune builds
#: warming in the background while it measures.
NO_SHADOWS: dict[str, Any] = {"verify": {"shadows": 0}}
#: Shadow builds of benchmark servers live here, never in the user's ~/.cache.
CACHE = Path(tempfile.mkdtemp(prefix="ocaml-ai-bench-cache-"))
atexit.register(shutil.rmtree, CACHE, True)


async def start(
    root: Path,
    env: dict[str, str] | None = None,
    capabilities: types.ClientCapabilities = CAPABILITIES,
    settings: dict[str, Any] | None = None,
) -> LanguageClient:
    """The server on `root`, its shadows under CACHE, `settings` as initializationOptions."""
    client = LanguageClient("benchmark", "0")
    env = dict(os.environ if env is None else env)
    env["XDG_CACHE_HOME"] = str(CACHE)
    env["XDG_DATA_HOME"] = str(CACHE / "data")  # the metrics database too
    await client.start_io(sys.executable, "-m", "ocaml_ai_ls", env=env)
    await client.initialize_async(
        types.InitializeParams(
            capabilities=capabilities,
            root_uri=path_to_uri(root),
            workspace_folders=[types.WorkspaceFolder(uri=path_to_uri(root), name=root.name)],
            initialization_options=settings,
        )
    )
    client.initialized(types.InitializedParams())
    return client


def open_doc(client: LanguageClient, path: Path, text: str) -> str:
    uri = path_to_uri(path)
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="ocaml", version=1, text=text)
        )
    )
    return uri


async def stop(client: LanguageClient) -> None:
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def row(name: str, values: list[float], unit: str = "ms") -> str:
    return (
        f"{name:<44} p50 {percentile(values, 0.5):8.2f} {unit}   "
        f"p95 {percentile(values, 0.95):8.2f} {unit}   (n={len(values)})"
    )


Json = dict[str, Any]
