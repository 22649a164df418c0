"""Shared fixtures: a scripted model on 127.0.0.1, a copy of the example project,
and an editor session with the real server process."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.editor import TEST_CACHE, Editor, copy_example, start_editor, stop_editor
from tests.model_server import ScriptedModel
from tests.wire_servers import AnthropicModel, OllamaModel

# Servers and commands the tests start keep their shadows, metrics and journals in a
# temporary directory, never in the developer's ~/.cache, ~/.local/share, ~/.local/state.
os.environ["XDG_CACHE_HOME"] = str(TEST_CACHE)
os.environ["XDG_DATA_HOME"] = str(TEST_CACHE / "data")
os.environ["XDG_STATE_HOME"] = str(TEST_CACHE / "state")
os.environ.pop("OCAML_AI_METRICS_DB", None)


@pytest.fixture
def model() -> Iterator[ScriptedModel]:
    server = ScriptedModel().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ollama() -> Iterator[OllamaModel]:
    """A scripted server speaking Ollama's native API."""
    server = OllamaModel().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def anthropic() -> Iterator[AnthropicModel]:
    """A scripted server speaking Anthropic's Messages API."""
    server = AnthropicModel().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_example(tmp_path)


@pytest_asyncio.fixture
async def editor(project: Path, model: ScriptedModel) -> AsyncIterator[Editor]:
    ed = await start_editor(project, model.base_url)
    try:
        yield ed
    finally:
        await stop_editor(ed)
