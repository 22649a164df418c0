"""`initialize`, `initialized` and `shutdown`: where the session's state begins and ends."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from lsprotocol import types

from ..config import SettingsError, SettingsLayers, client_section, read_config_file
from ..journal import recover_roots
from ..positions import Encoding
from ..session import Session
from ..uris import uri_to_path
from . import configuration

log = logging.getLogger(__name__)

#: Files whose changes the index follows (registered with the client when it can).
WATCHED_GLOBS = ("**/*.ml", "**/*.mli", "**/dune")


def initialize(session: Session, params: types.InitializeParams) -> None:
    """Folders, encoding and the settings layers known before the client is ready."""
    session.documents.encoding = Encoding.parse(session.lsp.workspace.position_encoding)
    folders = [uri_to_path(f.uri) for f in params.workspace_folders or []]
    if not folders and params.root_uri:
        folders = [uri_to_path(params.root_uri)]
    elif not folders and params.root_path:
        folders = [Path(params.root_path)]
    session.folders = [f for f in folders if f is not None]
    layers = SettingsLayers(init_options=client_section(params.initialization_options))
    try:
        layers.file = read_config_file(session.folders[0] if session.folders else None)
    except SettingsError as exc:
        session.startup_errors.append(str(exc))
    session.startup_errors.extend(session.adopt(layers, None))


async def initialized(session: Session, params: types.InitializedParams) -> None:
    """Say what was wrong with the settings, start indexing, warming and recording, then
    ask the client for file events and its configuration."""
    for error in session.startup_errors:
        session.show(f"ocaml-ai-ls settings: {error}")
    for done in recover_roots(session.folders):  # an `edit --apply` killed half way, first
        kind = types.MessageType.Warning if done.settled else types.MessageType.Error
        session.show(f"ocaml-ai-ls: {done.message}", kind)
    for folder in session.folders:
        session.index_for(folder)
        session.pool_for(folder)
    session.started = True
    session.sync_recorders()
    caps = session.lsp.client_capabilities.workspace
    watched = caps.did_change_watched_files if caps else None
    if watched and watched.dynamic_registration:
        await _register_watchers(session)
    if caps and caps.configuration:
        await configuration.pull(session)


async def _register_watchers(session: Session) -> None:
    options = types.DidChangeWatchedFilesRegistrationOptions(
        watchers=[types.FileSystemWatcher(glob_pattern=g) for g in WATCHED_GLOBS]
    )
    registration = types.Registration(
        id="ocaml-ai-watched-files",
        method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
        register_options=options,
    )
    try:
        await asyncio.wait_for(
            session.lsp.client_register_capability_async(
                types.RegistrationParams(registrations=[registration])
            ),
            5,
        )
    except Exception as exc:
        log.info("client/registerCapability failed: %s", exc)


def shutdown(session: Session, params: None) -> None:
    session.close()
