"""A scripted editor for end-to-end tests: the real server over stdio (pytest-lsp).

It opens documents, sends changes, asks for code actions and commands, and
applies `workspace/applyEdit` the way editors do (refusing stale versions),
so tests check the text a user would end up with.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from ocaml_ai_ls.edits.client_apply import ApplyRefused, plan_workspace_edit
from ocaml_ai_ls.positions import Encoding
from ocaml_ai_ls.uris import path_to_uri, uri_to_path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "shapes"
#: Client capabilities: a generic client with everything we use.
FULL = types.ClientCapabilities(
    general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf16]),
    window=types.WindowClientCapabilities(work_done_progress=True),
    workspace=types.WorkspaceClientCapabilities(
        apply_edit=True,
        configuration=False,
        workspace_edit=types.WorkspaceEditClientCapabilities(
            document_changes=True,
            resource_operations=[types.ResourceOperationKind.Create],
        ),
    ),
)


def copy_example(dest: Path) -> Path:
    root = dest / "shapes"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("_build"))
    return root


#: Shadow builds of test servers live here, never in the developer's ~/.cache.
TEST_CACHE = Path(tempfile.mkdtemp(prefix="ocaml-ai-test-cache-"))
atexit.register(shutil.rmtree, TEST_CACHE, True)
#: What a test session asks of the server unless the test says otherwise: one answer
#: per request, as most tests script one reply, and no retries (the scripted model
#: answers 500 once its replies are used up; retries are tested on their own).
TEST_SETTINGS: dict[str, Any] = {"generate": {"candidates": 1}, "model": {"retries": 0}}


def with_test_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """TEST_SETTINGS with a test's own settings over them, section by section."""
    out = {key: dict(value) for key, value in TEST_SETTINGS.items()}
    for key, value in settings.items():
        out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) else value
    return out


def server_env(base_url: str, **extra: str) -> dict[str, str]:
    """The environment without any endpoint the developer may have set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCAML_AI_")}
    env["OCAML_AI_BASE_URL"] = base_url
    env["XDG_CACHE_HOME"] = str(TEST_CACHE)
    env["XDG_DATA_HOME"] = str(TEST_CACHE / "data")
    env["XDG_STATE_HOME"] = str(TEST_CACHE / "state")
    env.update(extra)
    return env


class Editor:
    """One client session against one project root."""

    def __init__(self, client: LanguageClient, root: Path, encoding: Encoding) -> None:
        self.client = client
        self.root = root
        self.encoding = encoding
        self.open_docs: dict[str, tuple[str, int]] = {}
        self.applied: list[types.WorkspaceEdit] = []
        self.refused: list[str] = []
        self.accept_edits = True

    # -- documents ------------------------------------------------------------

    def uri(self, rel: str) -> str:
        return path_to_uri(self.root / rel)

    def open(self, rel: str, text: str | None = None) -> str:
        uri = self.uri(rel)
        content = (self.root / rel).read_bytes().decode() if text is None else text
        self.open_docs[uri] = (content, 1)
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="ocaml", version=1, text=content
                )
            )
        )
        return uri

    def replace_all(self, uri: str, text: str) -> None:
        _, version = self.open_docs[uri]
        self.open_docs[uri] = (text, version + 1)
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version + 1),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    def save(self, rel: str) -> None:
        """Write the open buffer to disk and say so, as an editor's save does."""
        uri = self.uri(rel)
        (self.root / rel).write_bytes(self.open_docs[uri][0].encode())
        self.client.text_document_did_save(
            types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )

    def text(self, rel: str) -> str:
        uri = self.uri(rel)
        if uri in self.open_docs:
            return self.open_docs[uri][0]
        return (self.root / rel).read_bytes().decode()

    # -- the editor's side of workspace/applyEdit -------------------------------

    def _read(self, uri: str) -> tuple[str, int | None] | None:
        if uri in self.open_docs:
            return self.open_docs[uri]
        path = uri_to_path(uri)
        return (path.read_bytes().decode(), None) if path and path.is_file() else None

    def apply(self, edit: types.WorkspaceEdit) -> types.ApplyWorkspaceEditResult:
        if not self.accept_edits:
            self.refused.append("user declined")
            return types.ApplyWorkspaceEditResult(applied=False, failure_reason="user declined")
        try:
            planned = plan_workspace_edit(edit, self._read, self.encoding)
        except ApplyRefused as exc:
            self.refused.append(str(exc))
            return types.ApplyWorkspaceEditResult(applied=False, failure_reason=str(exc))
        for uri, text in planned.items():
            if uri in self.open_docs:
                self.replace_all(uri, text)
            else:
                path = uri_to_path(uri)
                assert path is not None
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(text.encode())  # as is: no newline translation
        self.applied.append(edit)
        return types.ApplyWorkspaceEditResult(applied=True)

    # -- requests ---------------------------------------------------------------

    async def generate(self, timeout: float = 30, **arg: Any) -> dict[str, Any]:
        result = await asyncio.wait_for(
            self.client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="ocaml-ai.generate", arguments=[arg])
            ),
            timeout,
        )
        assert isinstance(result, dict)
        return result

    async def code_actions(
        self,
        uri: str,
        line: int,
        character: int = 0,
        diagnostics: list[types.Diagnostic] | None = None,
    ) -> list[types.CodeAction]:
        """The code actions at a position, read as an editor reads the JSON.

        pygls' client would structure `(Command | CodeAction)[]` by guessing and
        turns a CodeAction that carries a command into a Command, so the raw
        result is structured here, item by item.
        """
        pos = types.Position(line=line, character=character)
        params = types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=pos, end=pos),
            context=types.CodeActionContext(diagnostics=diagnostics or []),
        )
        protocol = self.client.protocol
        msg_id = f"code-action-{id(params)}"
        future = protocol.send_request(types.TEXT_DOCUMENT_CODE_ACTION, params, msg_id=msg_id)
        protocol._result_types.pop(msg_id, None)  # keep the raw JSON
        response = await asyncio.wrap_future(future)
        raw = getattr(response, "result", response) or []
        converter = protocol._converter
        return [
            converter.structure(item, types.CodeAction)
            for item in raw
            if not isinstance(item.get("command"), str)
        ]

    def progress_tokens(self, title_prefix: str) -> list[Any]:
        """Tokens of the progress reports whose begin title starts with the prefix."""
        return [
            token
            for token, reports in self.client.progress_reports.items()
            if any(getattr(r, "title", "").startswith(title_prefix) for r in reports)
        ]

    def progress_messages(self) -> list[str]:
        out: list[str] = []
        for reports in self.client.progress_reports.values():
            out.extend(getattr(r, "message", None) or "" for r in reports)
        return out

    def shown(self) -> list[str]:
        return [m.message for m in self.client.messages]


async def wait_until(condition: Callable[[], bool], timeout: float = 10) -> bool:
    """Poll a condition (a notification that may still be on its way)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def start_editor(
    root: Path,
    base_url: str,
    capabilities: types.ClientCapabilities | str = FULL,
    init_options: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Editor:
    """Start the real server as a subprocess and initialize a session."""
    config = ClientServerConfig(
        server_command=[sys.executable, "-m", "ocaml_ai_ls"],
        server_env=env or server_env(base_url),
    )
    client = await config.start()
    assert isinstance(client, LanguageClient)
    caps = client_capabilities(capabilities) if isinstance(capabilities, str) else capabilities
    result = await client.initialize_session(
        types.InitializeParams(
            capabilities=caps,
            root_uri=path_to_uri(root),
            workspace_folders=[types.WorkspaceFolder(uri=path_to_uri(root), name=root.name)],
            initialization_options=with_test_settings(init_options or {}),
        )
    )
    encoding = Encoding.parse(result.capabilities.position_encoding)
    editor = Editor(client, root, encoding)
    client.feature(types.WORKSPACE_APPLY_EDIT)(lambda params: editor.apply(params.edit))
    return editor


async def stop_editor(editor: Editor) -> None:
    try:
        await asyncio.wait_for(editor.client.shutdown_session(), 10)
    finally:
        await editor.client.stop()
