"""Code actions from the document alone; the model runs only when one is chosen.

Editors ask for code actions on every cursor move, so this never calls the
model and looks at a few lines only. An instruction comment near the cursor
offers `AI: <instruction>`; a diagnostic offers `AI: fix <message>`. The edit
comes later: on `codeAction/resolve` where the client resolves `edit`, else
through the `ocaml-ai.generate` command with `apply: true`.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from .documents import Document
from .instructions import find_instructions
from .request import GenerateRequest, request_json

COMMAND = "ocaml-ai.generate"
TITLE_CHARS = 80
MAX_FIX_ACTIONS = 3


def _title(text: str) -> str:
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"


def _wanted(only: list[str] | None, kind: str) -> bool:
    """LSP's `only`: a kind matches a listed kind or any of its parents."""
    return only is None or any(kind == o or kind.startswith(o + ".") for o in only)


#: Lines of code shown before and after a diagnostic's lines in a fix instruction.
FIX_CONTEXT_LINES = 3
#: Longest diagnostic span (in lines) quoted whole; a longer one shows its first lines.
FIX_MAX_SPAN = 8
LINE_CHARS = 200


def fix_instruction(diag: types.Diagnostic, doc: Document) -> str:
    """The error, where it is, and the numbered code around it (the lines it covers marked
    with `>`): the model sees what the compiler points at even in a large function."""
    source = f"{diag.source} " if diag.source else ""
    code = f" [{diag.code}]" if diag.code is not None else ""
    start, end = diag.range.start.line, max(diag.range.start.line, diag.range.end.line)
    end = min(end, start + FIX_MAX_SPAN - 1)
    first = max(0, start - FIX_CONTEXT_LINES)
    last = min(doc.index.line_count - 1, end + FIX_CONTEXT_LINES)
    shown = []
    for n in range(first, last + 1):
        line = doc.index.line_text(n)
        line = line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + " …"
        mark = ">" if start <= n <= end else " "
        shown.append(f"{mark}{n + 1:5} | {line}".rstrip())
    around = "\n".join(shown)
    return (
        f"Fix this {source}error{code} at line {start + 1}, "
        f"column {diag.range.start.character + 1}:\n{diag.message}\n\nThe code there:\n{around}"
    )


def _action(
    title: str,
    kind: str,
    req: GenerateRequest,
    resolve: bool,
    version: int,
    diagnostics: list[types.Diagnostic] | None = None,
) -> types.CodeAction:
    args: dict[str, Any] = request_json(req)
    if resolve:
        args["version"] = version
        return types.CodeAction(title=title, kind=kind, diagnostics=diagnostics, data=args)
    args["apply"] = True
    return types.CodeAction(
        title=title,
        kind=kind,
        diagnostics=diagnostics,
        command=types.Command(title=title, command=COMMAND, arguments=[args]),
    )


def code_actions(
    doc: Document, params: types.CodeActionParams, resolve: bool
) -> list[types.CodeAction]:
    """The AI actions at `params.range`; `resolve` when the client resolves `edit` later."""
    only = [str(k) for k in params.context.only] if params.context.only else None
    actions: list[types.CodeAction] = []
    if _wanted(only, types.CodeActionKind.RefactorRewrite):
        rng = params.range
        for found in find_instructions(doc, rng.start.line, rng.end.line):
            comment = doc.index.range(found.start_byte, found.end_byte)
            req = GenerateRequest(doc.uri, found.text, range=comment, comment=comment)
            actions.append(
                _action(
                    _title(f"AI: {found.text}"),
                    types.CodeActionKind.RefactorRewrite,
                    req,
                    resolve,
                    doc.version,
                )
            )
    if _wanted(only, types.CodeActionKind.QuickFix):
        seen: set[str] = set()
        for diag in params.context.diagnostics:
            first = diag.message.strip().splitlines()[0] if diag.message.strip() else ""
            if not first or first in seen or len(seen) >= MAX_FIX_ACTIONS:
                continue
            seen.add(first)
            req = GenerateRequest(doc.uri, fix_instruction(diag, doc), range=diag.range)
            actions.append(
                _action(
                    _title(f"AI: fix {first}"),
                    types.CodeActionKind.QuickFix,
                    req,
                    resolve,
                    doc.version,
                    [diag],
                )
            )
    return actions


def client_resolves_edit(caps: types.ClientCapabilities) -> bool:
    """Whether the client fills in `edit` through `codeAction/resolve`."""
    code_action = caps.text_document.code_action if caps.text_document else None
    if code_action is None or not code_action.data_support:
        return False
    support = code_action.resolve_support
    return bool(support and "edit" in support.properties)
