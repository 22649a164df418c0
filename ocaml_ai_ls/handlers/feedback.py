"""`ocaml-ai.feedback {id, accepted}`: the user kept (or rejected) a generation's edit."""

from __future__ import annotations

from typing import Any

from pygls.exceptions import JsonRpcInvalidParams

from ..session import Session

FEEDBACK_COMMAND = "ocaml-ai.feedback"


def feedback(session: Session, *args: Any) -> dict[str, Any]:
    arg = args[0] if len(args) == 1 else None
    if not isinstance(arg, dict):
        raise JsonRpcInvalidParams(f"{FEEDBACK_COMMAND} takes one object {{id, accepted}}")
    request_id, accepted = arg.get("id"), arg.get("accepted")
    if not isinstance(request_id, str) or not request_id:
        raise JsonRpcInvalidParams(f"{FEEDBACK_COMMAND}: id must be a generation's id")
    if not isinstance(accepted, bool):
        raise JsonRpcInvalidParams(f"{FEEDBACK_COMMAND}: accepted must be true or false")
    session.outcomes.feedback(request_id)
    session.report_outcome(request_id, None, accepted)
    return {"id": request_id, "accepted": accepted}
