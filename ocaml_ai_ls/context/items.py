"""Structure items: the unit the model is asked to rewrite.

An item is a top-level `let`, `type`, `module`, `exception`, ... with the doc
comments right above it. A request's target is the item around its range; a
big module is entered so the target stays a size a model rewrites well.
"""

from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import Node, Tree

#: Nodes whose named children are structure (or signature) items.
_CONTAINERS = {"compilation_unit", "structure", "signature"}
#: An item longer than this is entered when the range lies in one of its sub-items.
MAX_ITEM_LINES = 150
#: Node types that name an item, searched breadth-first below it.
_NAME_TYPES = (
    "value_name",
    "type_constructor",
    "module_name",
    "module_type_name",
    "constructor_name",
    "class_name",
)


@dataclass(frozen=True)
class Item:
    """A span of whole lines: `start_line`..`end_line`, 0-based and inclusive."""

    start_byte: int
    end_byte: int
    start_line: int
    end_line: int
    kind: str
    name: str | None

    @property
    def line_count(self) -> int:
        return self.end_line - self.start_line + 1


def _is_item(node: Node) -> bool:
    return node.is_named and node.type != "comment"


#: What a well-formed structure or signature holds; anything else at that level
#: (an ERROR node, a stray expression) is debris of a syntax error mid-edit.
_WELL_FORMED = frozenset(
    {
        "value_definition",
        "type_definition",
        "exception_definition",
        "module_definition",
        "module_type_definition",
        "open_module",
        "include_module",
        "class_definition",
        "class_type_definition",
        "external",
        "value_specification",
        "open_module_signature",
        "include_module_type",
        "expression_item",
        "toplevel_directive",
        "floating_attribute",
        "item_extension",
        "quoted_item_extension",
        "comment",
    }
)


def _broken_run(node: Node) -> tuple[Node, Node]:
    """The stretch of debris around a node that is not a well-formed item, so a
    target in a half-typed definition is the whole of it, not one stray word.

    A definition starts in column 0 in every OCaml style: that bounds the run
    (tokens such as `let` count, though tree-sitter leaves them unnamed).
    """
    first = last = node
    prev = first.prev_sibling
    while first.start_point[1] != 0 and prev is not None and prev.type not in _WELL_FORMED:
        first, prev = prev, prev.prev_sibling
    following = last.next_sibling
    while (
        following is not None
        and following.type not in _WELL_FORMED
        and following.start_point[1] != 0
    ):
        last, following = following, following.next_sibling
    return first, last


def _debris(container: Node, node: Node) -> Item | None:
    """The item for a node of a syntax error's debris, or None for a sound item."""
    if node.type in _WELL_FORMED or not container.has_error:
        return None
    first, last = _broken_run(node)
    item = _span(first, last)
    name = None
    current: Node | None = first  # the first name in the run: `centroids` in `let centroids`
    while current is not None and name is None:
        if current.type in _NAME_TYPES and current.text is not None:
            name = current.text.decode("utf-8", "replace")
        else:
            name = item_name(current) if current.is_named else None
        current = None if current == last else current.next_sibling
    return Item(item.start_byte, item.end_byte, item.start_line, item.end_line, "ERROR", name)


def item_name(node: Node) -> str | None:
    """The defined name of an item (`f` for `let f x = ...`), if it has one."""
    queue = list(node.named_children)
    while queue:
        child = queue.pop(0)
        if child.type in _NAME_TYPES and child.text is not None:
            return child.text.decode("utf-8", "replace")
        if child.type == "let_binding":  # only its pattern names it (`let () = ...`: nothing)
            pattern = child.child_by_field_name("pattern")
            if pattern is not None and pattern.type in _NAME_TYPES and pattern.text is not None:
                return pattern.text.decode("utf-8", "replace")
            continue
        if child.type in ("structure", "signature", "function_expression", "fun_expression"):
            continue  # a name in a body belongs to something else
        queue.extend(child.named_children)
    return None


def doc_head(node: Node) -> Node:
    """The first of the comments that sit directly above `node`, or `node` itself.

    A comment that trails the code before it is not one of them.
    """
    first = node
    prev = node.prev_named_sibling
    while (
        prev is not None
        and prev.type == "comment"
        and prev.end_point[0] + 1 >= first.start_point[0]
        and not trails(prev)
    ):
        first = prev
        prev = prev.prev_named_sibling
    return first


def trails(comment: Node) -> bool:
    """A comment on the line where the code before it ends (`let a = 1 (* a *)`)
    belongs to that code, not to the item below."""
    before = comment.prev_sibling
    return before is not None and before.end_point[0] == comment.start_point[0]


def _inner_container(item: Node, start: int, end: int) -> Node | None:
    """A structure or signature inside `item` that holds the byte range."""
    stack = list(item.named_children)
    while stack:
        node = stack.pop()
        if node.start_byte <= start and end <= node.end_byte:
            if node.type in ("structure", "signature"):
                return node
            stack.extend(node.named_children)
    return None


def _span(first: Node, last: Node) -> Item:
    head = doc_head(first)
    end_line = last.end_point[0]
    if last.end_point[1] == 0 and end_line > last.start_point[0]:
        end_line -= 1
    return Item(
        start_byte=head.start_byte,
        end_byte=last.end_byte,
        start_line=head.start_point[0],
        end_line=end_line,
        kind=first.type,
        name=item_name(first) if first == last else None,
    )


def enclosing_item(tree: Tree, start: int, end: int) -> Item | None:
    """The item(s) around the byte range [start, end].

    A range over several items gives their whole span; a range in a comment
    or blank lines between items gives the next item (a comment is about what
    follows it), else the previous one.
    """
    container = tree.root_node
    while True:
        items = [c for c in container.named_children if _is_item(c)]
        if not items:
            return None
        hit = [c for c in items if c.start_byte <= end and start <= c.end_byte]
        if start < end:  # a non-empty selection: touching an item is not enough
            hit = [c for c in hit if c.start_byte < end and start < c.end_byte] or hit
        elif len(hit) > 1:  # a cursor between two adjacent items: the one it is in
            hit = [c for c in hit if c.start_byte <= start < c.end_byte] or hit[:1]
        if not hit:
            after = [c for c in items if c.start_byte >= end]
            chosen = after[0] if after else items[-1]
            return _debris(container, chosen) or _span(chosen, chosen)
        if len(hit) == 1 and (broken := _debris(container, hit[0])) is not None:
            return broken
        if len(hit) == 1:
            only = hit[0]
            if only.end_point[0] - only.start_point[0] + 1 > MAX_ITEM_LINES:
                inner = _inner_container(only, start, end)
                if inner is not None and any(_is_item(c) for c in inner.named_children):
                    container = inner
                    continue
            return _span(only, only)
        return _span(hit[0], hit[-1])
