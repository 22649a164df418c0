"""`ocaml-ai.context`: the context a request would send the model, without the model
(the same argument as `ocaml-ai.generate`, the instruction optional)."""

from __future__ import annotations

from typing import Any

from pygls.exceptions import JsonRpcInvalidParams

from ..context.render import explain
from ..pipeline import GenerationError, prepare
from ..request import RequestError, parse_request
from ..session import Session

CONTEXT_COMMAND = "ocaml-ai.context"


async def context(session: Session, *args: Any) -> dict[str, Any]:
    """The pieces as JSON, and the `--explain` text when the argument asks `explain: true`."""
    try:
        req = parse_request(list(args), instruction_required=False, command=CONTEXT_COMMAND)
        ws = session.workspace_for(req.uri)
        await session.wait_for_index(ws, lambda message: None)
        index = session.index_for(ws.root)
        prep = prepare(req, ws, session.settings, session.documents.encoding, index)
    except (RequestError, GenerationError) as exc:
        raise JsonRpcInvalidParams(f"{CONTEXT_COMMAND}: {exc}") from None
    found = prep.context.to_json()
    arg = args[0] if len(args) == 1 else None
    if isinstance(arg, dict) and arg.get("explain") is True:
        found["explain"] = explain(prep.context)
    return found
