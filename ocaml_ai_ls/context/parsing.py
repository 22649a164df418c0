"""tree-sitter for OCaml: the two grammars, parsers, queries and syntax errors."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path, PurePath

import tree_sitter_ocaml
from tree_sitter import Language, Node, Parser, Query, Tree

#: The queries the engine loads (package data, beside the code).
GRAMMARS = Path(__file__).resolve().parent.parent / "grammars" / "ocaml"


class SourceKind(StrEnum):
    """Implementation (.ml) and interface (.mli) files have different grammars."""

    IMPLEMENTATION = "ml"
    INTERFACE = "mli"

    @classmethod
    def of(cls, path: str | PurePath) -> SourceKind | None:
        suffix = PurePath(path).suffix
        if suffix == ".ml":
            return cls.IMPLEMENTATION
        if suffix == ".mli":
            return cls.INTERFACE
        return None


@cache
def language(kind: SourceKind) -> Language:
    if kind is SourceKind.INTERFACE:
        return Language(tree_sitter_ocaml.language_ocaml_interface())
    return Language(tree_sitter_ocaml.language_ocaml())


_local = threading.local()


def parser(kind: SourceKind) -> Parser:
    """A parser for this thread (tree-sitter parsers are not thread-safe)."""
    parsers: dict[SourceKind, Parser] | None = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    if kind not in parsers:
        parsers[kind] = Parser(language(kind))
    return parsers[kind]


def parse(data: bytes, kind: SourceKind, old_tree: Tree | None = None) -> Tree:
    return parser(kind).parse(data, old_tree) if old_tree else parser(kind).parse(data)


def _query_source(name: str) -> str:
    source = GRAMMARS / f"{name}.scm"
    return source.read_text(encoding="utf-8")


@cache
def query(kind: SourceKind, name: str) -> Query:
    """A query from `grammars/ocaml/NAME.scm`, compiled once per grammar."""
    return Query(language(kind), _query_source(name))


@cache
def joint_query(kind: SourceKind, names: tuple[str, ...]) -> tuple[Query, tuple[int, ...]]:
    """The queries of several `.scm` files as one, and per pattern the position in
    `names` of the file it comes from: one walk of the tree instead of one per file."""
    sources = [_query_source(name) + "\n" for name in names]
    joint = Query(language(kind), "".join(sources))
    ends: list[int] = []
    for text in sources:
        ends.append((ends[-1] if ends else 0) + len(text.encode("utf-8")))
    origin = tuple(
        next(i for i, end in enumerate(ends) if joint.start_byte_for_pattern(p) < end)
        for p in range(joint.pattern_count)
    )
    return joint, origin


@dataclass(frozen=True)
class SyntaxError_:
    """One ERROR or MISSING node: 0-based line and byte column."""

    line: int
    column: int
    message: str


def syntax_errors(tree: Tree, data: bytes, limit: int = 20) -> list[SyntaxError_]:
    """The ERROR and MISSING nodes of a tree, outermost first, at most `limit`."""
    out: list[SyntaxError_] = []
    if not tree.root_node.has_error:
        return out
    stack: list[Node] = [tree.root_node]
    while stack and len(out) < limit:
        node = stack.pop()
        if node.is_missing:
            out.append(
                SyntaxError_(node.start_point[0], node.start_point[1], f"missing `{node.type}`")
            )
        elif node.is_error:
            snippet = data[node.start_byte : min(node.end_byte, node.start_byte + 40)]
            text = snippet.decode("utf-8", "replace").split("\n")[0].strip()
            out.append(
                SyntaxError_(
                    node.start_point[0],
                    node.start_point[1],
                    f"syntax error at `{text}`" if text else "syntax error",
                )
            )
        elif node.has_error:
            stack.extend(reversed(node.children))
    out.sort(key=lambda e: (e.line, e.column))
    return out
