"""Settings from the client: `workspace/didChangeConfiguration`, and
`workspace/configuration` pulled where the client answers it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from lsprotocol import types

from ..config import client_section
from ..session import Session

log = logging.getLogger(__name__)

CONFIG_SECTION = "ocaml-ai"


async def pull(session: Session) -> None:
    """Ask the client for our section; an unanswered request keeps the settings."""
    try:
        items = await asyncio.wait_for(
            session.lsp.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section=CONFIG_SECTION)])
            ),
            5,
        )
    except Exception as exc:
        log.info("workspace/configuration failed: %s", exc)
        return
    if items and isinstance(items[0], dict):
        update(session, items[0])


def update(session: Session, section: dict[str, Any]) -> None:
    """Adopt the client's section, unless it is invalid (then say why and keep the rest)."""
    errors = session.adopt(replace(session.layers, client=section), "workspace configuration")
    for error in errors:
        if error.startswith("workspace configuration"):
            session.show(f"ocaml-ai-ls settings: {error} (keeping the previous settings)")


async def did_change(session: Session, params: types.DidChangeConfigurationParams) -> None:
    """Settings pushed with the notification, else pulled (the notification may be empty)."""
    section = client_section(params.settings)
    caps = session.lsp.client_capabilities.workspace
    if section:
        update(session, section)
    elif caps and caps.configuration:
        await pull(session)
