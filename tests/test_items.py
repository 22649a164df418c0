"""The target item around a range, found with tree-sitter."""

from __future__ import annotations

from ocaml_ai_ls.context.items import MAX_ITEM_LINES, enclosing_item
from ocaml_ai_ls.context.parsing import SourceKind, parse
from ocaml_ai_ls.positions import encode

SOURCE = """(* header comment *)

(** Sum of a list. *)
let rec sum = function
  | [] -> 0
  | x :: xs -> x + sum xs

(* ai: make it tail recursive *)
let rec length = function
  | [] -> 0
  | _ :: xs -> 1 + length xs

type t = A | B
"""


def at(text: str, needle: str) -> int:
    return len(encode(text[: text.index(needle)]))


def item_for(text: str, start: str, end: str | None = None) -> tuple[int, int, str, str | None]:
    tree = parse(encode(text), SourceKind.IMPLEMENTATION)
    s = at(text, start)
    e = at(text, end) if end else s
    item = enclosing_item(tree, s, e)
    assert item is not None
    return item.start_line, item.end_line, item.kind, item.name


def test_cursor_in_body_gives_the_item_with_its_doc_comment() -> None:
    assert item_for(SOURCE, "x + sum") == (2, 5, "value_definition", "sum")


def test_instruction_comment_belongs_to_the_item_below() -> None:
    start, end, _, name = item_for(SOURCE, "(* ai:")
    assert name == "length"
    assert (start, end) == (7, 10)  # the comment sits right above, so it is included


def test_selection_over_two_items_spans_both() -> None:
    assert item_for(SOURCE, "let rec sum", "length = function")[:2] == (2, 10)
    # ending where the next item starts does not pull it in
    assert item_for(SOURCE, "let rec sum", "(* ai:")[:2] == (2, 5)


def test_trailing_blank_after_last_item_gives_the_previous_item() -> None:
    text = SOURCE + "\n\n"
    tree = parse(encode(text), SourceKind.IMPLEMENTATION)
    item = enclosing_item(tree, len(encode(text)), len(encode(text)))
    assert item is not None and item.name == "t"


def test_big_module_is_entered() -> None:
    body = "\n".join(f"  let v{i} = {i}" for i in range(MAX_ITEM_LINES + 10))
    text = f"module Big = struct\n{body}\n  let target x = x + 1\nend\n"
    _, _, kind, name = item_for(text, "x + 1")
    assert (kind, name) == ("value_definition", "target")


def test_small_module_stays_whole() -> None:
    text = "module Small = struct\n  let a = 1\n  let b = 2\nend\n"
    assert item_for(text, "2") == (0, 3, "module_definition", "Small")


def test_interface_items() -> None:
    text = "val a : int\n\n(** doc *)\nval f : int -> int\n"
    tree = parse(encode(text), SourceKind.INTERFACE)
    item = enclosing_item(tree, at(text, "int -> int"), at(text, "int -> int"))
    assert item is not None and (item.start_line, item.name) == (2, "f")


def test_empty_file_has_no_item() -> None:
    assert enclosing_item(parse(b"", SourceKind.IMPLEMENTATION), 0, 0) is None
