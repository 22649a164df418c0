"""`textDocument/codeAction`: the AI actions at the cursor, from the document alone
(the model runs only when one is chosen: `generate`)."""

from __future__ import annotations

from lsprotocol import types

from ..code_actions import client_resolves_edit, code_actions
from ..session import Session

OPTIONS = types.CodeActionOptions(
    code_action_kinds=[types.CodeActionKind.RefactorRewrite, types.CodeActionKind.QuickFix],
    resolve_provider=True,
)


def code_action(session: Session, params: types.CodeActionParams) -> list[types.CodeAction] | None:
    doc = session.documents.get(params.text_document.uri)
    if doc is None:
        return None
    resolve = client_resolves_edit(session.lsp.client_capabilities)
    return code_actions(doc, params, resolve) or None
