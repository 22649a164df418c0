"""Code actions come from the document alone, as resolvable data or as a command."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from ocaml_ai_ls.code_actions import COMMAND, client_resolves_edit, code_actions
from ocaml_ai_ls.diagnostics import diagnostics_by_uri
from ocaml_ai_ls.documents import Document
from ocaml_ai_ls.positions import Encoding
from ocaml_ai_ls.request import parse_request
from ocaml_ai_ls.verify.result import CheckError

SOURCE = "let a = 1\n\n(* ai: make f tail recursive *)\nlet rec f = function\n  | [] -> 0\n  | _ :: t -> 1 + f t\n"


def params(
    line: int, diagnostics: list[types.Diagnostic] | None = None, only: list[str] | None = None
) -> types.CodeActionParams:
    pos = types.Position(line=line, character=0)
    return types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri="file:///p/a.ml"),
        range=types.Range(start=pos, end=pos),
        context=types.CodeActionContext(diagnostics=diagnostics or [], only=only),
    )


def diag(message: str, line: int = 4) -> types.Diagnostic:
    pos = types.Position(line=line, character=2)
    return types.Diagnostic(
        range=types.Range(start=pos, end=pos), message=message, source="ocamllsp"
    )


DOC = Document.open("file:///p/a.ml", 3, SOURCE, Encoding.UTF16)


def test_instruction_comment_offers_a_resolvable_rewrite() -> None:
    [action] = code_actions(DOC, params(3), resolve=True)
    assert action.title == "AI: make f tail recursive"
    assert action.kind == types.CodeActionKind.RefactorRewrite
    assert action.edit is None and action.command is None
    req = parse_request(action.data)
    assert req.instruction == "make f tail recursive"
    assert (
        req.comment is not None
        and req.comment.start.line == 2
        and req.comment.end.character == len("(* ai: make f tail recursive *)")
    )
    assert isinstance(action.data, dict) and action.data["version"] == 3


def test_without_resolve_support_the_action_runs_the_command_and_applies() -> None:
    [action] = code_actions(DOC, params(2), resolve=False)
    assert action.command is not None and action.command.command == COMMAND
    args = action.command.arguments
    assert isinstance(args, list) and args[0]["apply"] is True
    assert parse_request(args).comment is not None


def test_far_from_the_comment_there_is_no_instruction_action() -> None:
    assert code_actions(DOC, params(0), resolve=True) == []


def test_diagnostics_offer_quick_fixes_once_per_message() -> None:
    diags = [
        diag("Error: This expression has type int\nbut an expression was expected of type string"),
        diag("Error: This expression has type int\nbut ..."),
        diag("Unbound value g"),
    ]
    actions = code_actions(DOC, params(5, diags), resolve=True)
    titles = [a.title for a in actions if a.kind == types.CodeActionKind.QuickFix]
    assert titles == ["AI: fix Error: This expression has type int", "AI: fix Unbound value g"]
    fix = next(a for a in actions if a.kind == types.CodeActionKind.QuickFix)
    assert fix.diagnostics is not None and len(fix.diagnostics) == 1
    assert "expected of type string" in parse_request(fix.data).instruction


def test_a_fix_instruction_carries_the_error_its_location_and_the_code_around_it() -> None:
    [fix] = code_actions(DOC, params(5, [diag("Unbound value t", line=5)]), resolve=True)
    instruction = parse_request(fix.data).instruction
    assert instruction.startswith("Fix this ocamllsp error at line 6, column 3:\nUnbound value t")
    shown = instruction.split("The code there:\n", 1)[1].splitlines()
    assert shown == [
        "     3 | (* ai: make f tail recursive *)",
        "     4 | let rec f = function",
        "     5 |   | [] -> 0",
        ">    6 |   | _ :: t -> 1 + f t",
        "     7 |",
    ]


def test_only_filters_kinds() -> None:
    diags = [diag("Unbound value g", 3)]
    assert [a.kind for a in code_actions(DOC, params(3, diags, ["quickfix"]), True)] == ["quickfix"]
    assert [a.kind for a in code_actions(DOC, params(3, diags, ["refactor"]), True)] == [
        "refactor.rewrite"
    ]


def test_client_resolves_edit() -> None:
    caps = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            code_action=types.CodeActionClientCapabilities(
                data_support=True,
                resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]),
            )
        )
    )
    assert client_resolves_edit(caps)
    assert not client_resolves_edit(types.ClientCapabilities())


def test_a_warning_the_build_makes_an_error_is_published_as_a_warning() -> None:
    root = Path("/p")
    errors = [
        CheckError("a.ml", 1, 16, "unused variable y.", 1, 17, severity="warning", warning=26),
        CheckError("a.ml", 2, 1, "Unbound value z", 2, 2),
    ]
    found = diagnostics_by_uri(
        errors, root, lambda path: "let f x = let y = 1 in x\nz\n", Encoding.UTF16
    )
    [warning, error] = found["file:///p/a.ml"]
    assert (warning.severity, warning.code) == (types.DiagnosticSeverity.Warning, "warning 26")
    assert (error.severity, error.code) == (types.DiagnosticSeverity.Error, None)
