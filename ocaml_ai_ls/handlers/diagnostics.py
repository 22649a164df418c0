"""Diagnostics after a save: the project type-checked in a warm shadow as it is, its
errors published as ours (so `AI: fix …` works in editors that hand a server only its
own diagnostics)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from lsprotocol import types

from ..diagnostics import diagnostics_by_uri
from ..session import Session
from ..verify.result import TIMEOUT, CheckError
from ..workspace import Workspace

log = logging.getLogger(__name__)


def check_soon(session: Session, root: Path) -> None:
    """Type-check the project as it is (after a save) and publish the errors; a save
    during a check asks for one more check after it."""
    if not session.settings.verify.diagnostics or session.pool_for(root) is None:
        return
    running = session.diagnosing.get(root)
    if running is not None and not running.done():
        session.diagnose_again.add(root)
        return
    session.diagnosing[root] = session.spawn(_check(session, root))


async def _check(session: Session, root: Path) -> None:
    pool = session.pools.get(root)
    while pool is not None:
        session.diagnose_again.discard(root)
        try:
            found = await pool.check({}, session.settings.verify.timeout, False)
        except Exception:
            log.exception("checking %s after a save failed", root)
            return
        if found.status != TIMEOUT:
            _publish(session, root, found.errors)
        if root not in session.diagnose_again:
            return


def _publish(session: Session, root: Path, errors: Sequence[CheckError]) -> None:
    """Publish the errors as our diagnostics; clear the files that no longer have any."""
    ws = Workspace(root, session.documents)

    def read(path: Path) -> str | None:
        found = ws.read(path)
        return found.text if found is not None else None

    by_uri = diagnostics_by_uri(errors, root, read, session.documents.encoding)
    for uri in session.published.get(root, set()) - by_uri.keys():
        by_uri[uri] = []
    for uri, found_here in by_uri.items():
        session.lsp.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=found_here)
        )
    session.published[root] = {uri for uri, found in by_uri.items() if found}
