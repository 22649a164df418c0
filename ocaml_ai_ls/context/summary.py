"""What one OCaml file defines, uses and opens, read with the `grammars/ocaml` queries.

A file is summarised one top-level item at a time ("chunk": the item with the
comments right above it). Chunk summaries hold lines relative to the chunk and
are cached by the hash of the chunk's bytes, so after a keystroke only the
edited item is queried again, and a file summary is a cheap list of chunks.

An item is read with the four query files run as one query (one walk of its
tree); a cold index of a project reads every item of every file, so that walk
and the Python work per capture are what indexing costs beyond parsing
(`benchmarks/index_speed.py`).
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING

from cachetools import LRUCache
from tree_sitter import Node, QueryCursor, Tree

from .items import doc_head, trails
from .parsing import SourceKind, joint_query

if TYPE_CHECKING:
    from ..documents import Edit


class DefKind(StrEnum):
    VALUE = "value"
    FUNCTION = "function"
    EXTERNAL = "external"
    TYPE = "type"
    CONSTRUCTOR = "constructor"
    FIELD = "field"
    EXCEPTION = "exception"
    MODULE = "module"
    FUNCTOR = "functor"
    MODULE_TYPE = "module_type"
    CLASS = "class"


class RefKind(StrEnum):
    VALUE = "value"
    TYPE = "type"
    CONSTRUCTOR = "constructor"
    FIELD = "field"
    MODULE = "module"
    MODULE_TYPE = "module_type"


#: Which definition kinds a use of each kind can name.
MATCHES: dict[RefKind, frozenset[DefKind]] = {
    RefKind.VALUE: frozenset({DefKind.VALUE, DefKind.FUNCTION, DefKind.EXTERNAL}),
    RefKind.TYPE: frozenset({DefKind.TYPE}),
    RefKind.CONSTRUCTOR: frozenset({DefKind.CONSTRUCTOR, DefKind.EXCEPTION}),
    RefKind.FIELD: frozenset({DefKind.FIELD}),
    RefKind.MODULE: frozenset({DefKind.MODULE, DefKind.FUNCTOR}),
    RefKind.MODULE_TYPE: frozenset({DefKind.MODULE_TYPE}),
}

#: Kinds shown whole (the model needs the body); the others by their signature.
FULL_KINDS = frozenset(
    {
        DefKind.TYPE,
        DefKind.CONSTRUCTOR,
        DefKind.FIELD,
        DefKind.EXCEPTION,
        DefKind.MODULE_TYPE,
        DefKind.EXTERNAL,
    }
)


@dataclass(frozen=True, slots=True)
class Definition:
    """One module-level definition; lines are 0-based and inclusive.

    `start_line`..`sig_end_line` is what a caller needs to see (doc comment and
    signature; the whole text for types), `start_line`..`end_line` all of it.
    """

    name: str
    kind: DefKind
    #: Enclosing modules (and module types) inside the file.
    scope: tuple[str, ...]
    line: int
    start_line: int
    sig_end_line: int
    end_line: int
    #: The type a constructor or field belongs to.
    owner: str | None = None
    #: `module A = B`: B; `module A = F (X)`: F (and `args` holds X).
    body: tuple[str, ...] | None = None
    args: tuple[tuple[str, ...], ...] = ()
    #: `module A : S`, `module F (X : K) : S with ...`: S.
    signature: tuple[str, ...] | None = None
    #: Whether the definition sees itself (`let rec`, `module rec`, types unless `nonrec`).
    recursive: bool = False

    def shifted(self, by: int) -> Definition:
        if by == 0:
            return self
        # positional, not `dataclasses.replace`: this runs for every definition of
        # every file the index reads, and `replace` costs ten times as much
        return Definition(
            self.name,
            self.kind,
            self.scope,
            self.line + by,
            self.start_line + by,
            self.sig_end_line + by,
            self.end_line + by,
            self.owner,
            self.body,
            self.args,
            self.signature,
            self.recursive,
        )

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # pickled by the index store (`summary_store`): positional, as `shifted`; the
        # dataclass's own `__setstate__` makes loading five times slower
        return (_definition, (*(getattr(self, n) for n in _DEFINITION_FIELDS),))


@dataclass(frozen=True, slots=True)
class Reference:
    """A use of a (maybe qualified) name: `("Foo", "Bar", "x")`."""

    path: tuple[str, ...]
    kind: RefKind
    line: int

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (_reference, (self.path, self.kind, self.line))


@dataclass(frozen=True, slots=True)
class Import:
    """`open M` / `include M` at `line`; `local` when inside an expression."""

    path: tuple[str, ...]
    include: bool
    line: int
    scope: tuple[str, ...]
    local: bool
    #: A local open's last line (`let open M in e`: the end of `e`); -1 otherwise.
    end_line: int = -1

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Import, (self.path, self.include, self.line, self.scope, self.local, self.end_line))

    def shifted(self, by: int) -> Import:
        if by == 0:
            return self
        end = self.end_line + by if self.end_line >= 0 else -1
        return replace(self, line=self.line + by, end_line=end)


@dataclass(frozen=True, slots=True, weakref_slot=True)
class ChunkSummary:
    """One top-level item, lines relative to its first line."""

    definitions: tuple[Definition, ...]
    references: tuple[Reference, ...]
    imports: tuple[Import, ...]
    #: Names bound inside the item (parameters, local lets): uses of them are local.
    bound: frozenset[str]
    #: `let module M = ... in e`: the binding, `end_line` being the end of `e`.
    local_modules: tuple[Definition, ...] = ()

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (
            ChunkSummary,
            (self.definitions, self.references, self.imports, self.bound, self.local_modules),
        )


@dataclass(frozen=True, slots=True)
class Chunk:
    start_line: int
    end_line: int
    start_byte: int
    end_byte: int
    summary: ChunkSummary

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        fields = (self.start_line, self.end_line, self.start_byte, self.end_byte, self.summary)
        return (Chunk, fields)


def _slot_setters(
    cls: type, names: tuple[str, ...]
) -> tuple[Callable[[object, object], None], ...]:
    """The slot setters of a frozen dataclass's fields, which must be `names` in order."""
    if tuple(f.name for f in fields(cls)) != names:
        raise TypeError(f"{cls.__name__}'s fields changed: update its maker below")
    return tuple(getattr(cls, name).__set__ for name in names)


# A cold index makes a hundred thousand references and some ten thousand
# definitions; a frozen dataclass's `__init__` sets each field through
# `object.__setattr__`, which costs 2.5 times what setting its slots does.
_new = object.__new__
_SET_PATH, _SET_REF_KIND, _SET_REF_LINE = _slot_setters(Reference, ("path", "kind", "line"))
_DEFINITION_FIELDS = (
    "name",
    "kind",
    "scope",
    "line",
    "start_line",
    "sig_end_line",
    "end_line",
    "owner",
    "body",
    "args",
    "signature",
    "recursive",
)
_DEFINITION_SETTERS = _slot_setters(Definition, _DEFINITION_FIELDS)


def _reference(path: tuple[str, ...], kind: RefKind, line: int) -> Reference:
    """`Reference(path, kind, line)`, faster."""
    ref: Reference = _new(Reference)
    _SET_PATH(ref, path)
    _SET_REF_KIND(ref, kind)
    _SET_REF_LINE(ref, line)
    return ref


def _definition(*values: object) -> Definition:
    """`Definition(...)` with every field given in order, faster."""
    made: Definition = _new(Definition)
    for setter, value in zip(_DEFINITION_SETTERS, values, strict=True):
        setter(made, value)
    return made


#: Nodes a module-level definition may sit in; any other ancestor makes it local.
_STRUCTURAL = frozenset(
    {
        "compilation_unit",
        "structure",
        "signature",
        "value_definition",
        "type_definition",
        "type_binding",
        "variant_declaration",
        "record_declaration",
        "constructor_declaration",
        "exception_definition",
        "module_definition",
        "module_binding",
        "module_type_definition",
        "module_type_constraint",
        "class_definition",
        "class_binding",
        "class_type_definition",
        "class_type_binding",
        "external",
        "value_specification",
        "include_module",
    }
)
#: Path node types: a module path inside one of these is part of it.
_PATHS = frozenset(
    {
        "value_path",
        "type_constructor_path",
        "constructor_path",
        "field_path",
        "module_path",
        "extended_module_path",
        "module_type_path",
    }
)
_CONTAINERS = frozenset({"compilation_unit", "structure", "signature"})
_FUNCTION_BODIES = frozenset({"fun_expression", "function_expression"})


def _text(node: Node | None) -> str:
    raw = node.text if node is not None else None
    return "" if raw is None else raw.decode("utf-8", "replace")


def path_of(node: Node) -> tuple[str, ...]:
    """`Foo.Bar.x` as ("Foo", "Bar", "x"); `F(X).t` names F; `Foo.( +++ )` keeps `(+++)`."""
    return _path_of_text(_text(node))


def _path_of_text(text: str) -> tuple[str, ...]:
    text = "".join(text.split())
    if "(" not in text and ")" not in text:
        return tuple(p for p in text.split(".") if p)  # what the loop below makes of it
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "." and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    out = (p if p.startswith("(") else p.split("(", 1)[0] for p in parts)
    return tuple(p for p in out if p)


#: The queries a chunk is read with, run as one (one walk of the item, not four).
_QUERIES = ("definitions", "imports", "references", "patterns")
_DEFINITIONS, _IMPORTS, _REFERENCES, _PATTERNS = range(len(_QUERIES))
#: Parents that make a module path part of something else, not a use of its own.
_NOT_A_MODULE_USE = _PATHS | {"open_module", "include_module", "local_open_expression"}


#: A reference capture's name → the kind of use; a definition capture's → the kind
#: of definition (a dict: calling the enum costs more than the rest of a capture).
_REFERENCE_CAPTURES = {f"reference.{k.value}": k for k in RefKind}
_DEFINITION_CAPTURES = {f"definition.{k.value}": k for k in DefKind}


def summarize_item(item: Node, kind: SourceKind) -> ChunkSummary:
    """Run the definition, reference, import and pattern queries over one top-level item."""
    return _Reader(kind).read(item)


def _first_named(node: Node, kind: str) -> str:
    for child in node.named_children:
        if child.type == kind:
            return _text(child)
    return ""


def _last_line(node: Node) -> int:
    end_row, end_col = node.end_point
    return end_row - 1 if end_col == 0 and end_row > node.start_point[0] else end_row


_TYPE_PARTS = frozenset({"type_binding", "variant_declaration", "record_declaration"})
_TYPE_HOLDERS = ("type_binding", "exception_definition")


def _above(chain: list[Node], outer: Node | None, depth: int) -> Node | None:
    """The ancestor `depth` levels above `node` (1: its parent) of a node whose
    ancestors from the item down are `chain` and whose item's parent is `outer`."""
    if depth <= len(chain):
        return chain[-depth]
    current = outer
    for _ in range(depth - len(chain) - 1):
        if current is None:
            return None
        current = current.parent
    return current


def _type_above(types: list[str], chain: list[Node], outer: Node | None, depth: int) -> str | None:
    """The type of `_above(chain, outer, depth)`; `types` are those of `chain`."""
    if depth <= len(types):
        return types[-depth]
    above = _above(chain, outer, depth)
    return above.type if above is not None else None


#: `_keywords` of one node, by its id (a file's root is asked once per `val` item).
_Keywords = dict[int, frozenset[str]]


def _keywords(holder: Node, memo: _Keywords) -> frozenset[str]:
    """The anonymous children of `holder` (`rec`, `nonrec`, ...)."""
    found = memo.get(holder.id)
    if found is None:
        found = memo[holder.id] = frozenset(c.type for c in holder.children if not c.is_named)
    return found


def _recursive(chain: list[Node], types: list[str], outer: Node | None, memo: _Keywords) -> bool:
    """`let rec`, `module rec`, and types (recursive unless `nonrec`), of the node
    whose ancestors (from the item down) are `chain`, of types `types`."""
    depth = 1
    kind = _type_above(types, chain, outer, depth)
    while kind is not None and kind in _TYPE_PARTS:
        depth += 1
        kind = _type_above(types, chain, outer, depth)
    holder = _above(chain, outer, depth)
    if kind is None or holder is None:
        return False
    keywords = _keywords(holder, memo)
    if kind == "type_definition":
        return "nonrec" not in keywords
    return "rec" in keywords


class _Reader:
    """Reads top-level items of one grammar: one joint query (one walk of the item,
    not one per query file) through one cursor, the paths it has read remembered
    (a file writes the same few names again and again)."""

    def __init__(self, kind: SourceKind) -> None:
        joint, self.origin = joint_query(kind, _QUERIES)
        self.cursor = QueryCursor(joint)
        self.paths: dict[bytes, tuple[str, ...]] = {}
        self.keywords: _Keywords = {}
        #: The item being read, its first line and its parent.
        self.item: Node | None = None
        self.base = 0
        self.clamp = False
        self.outer: Node | None = None

    def read(
        self, item: Node, first_line: int | None = None, parent: Node | None = None
    ) -> ChunkSummary:
        """The item's summary, lines relative to `first_line` (its doc comment's; by
        default its own). `parent`: the item's, if the caller knows it (tree-sitter
        finds it from the root, through the items before this one)."""
        self.item = item
        own = item.start_point[0]
        self.base = base = own if first_line is None else first_line
        # below a doc comment, a definition starts at the chunk's start at the earliest
        self.clamp = base != own
        self.outer = parent if parent is not None else item.parent
        origin = self.origin
        paths = self.paths
        definitions: list[Definition] = []
        local_modules: list[Definition] = []
        bound: set[str] = set()
        found_refs: list[tuple[int, tuple[str, ...], RefKind]] = []
        opens: list[dict[str, list[Node]]] = []
        module = RefKind.MODULE
        for pattern, captures in self.cursor.matches(item):
            where = origin[pattern]
            if where == _REFERENCES:
                ((capture, nodes),) = captures.items()
                ref_kind = _REFERENCE_CAPTURES[capture]
                node = nodes[0]
                if ref_kind is module:
                    parent = node.parent
                    if parent is not None and parent.type in _NOT_A_MODULE_USE:
                        continue
                raw = node.text or b""
                path = paths.get(raw)
                if path is None:
                    path = paths[raw] = _path_of_text(raw.decode("utf-8", "replace"))
                if path:
                    found_refs.append((node.start_point[0] - base, path, ref_kind))
            elif where == _PATTERNS:
                bound_text = captures["bound"][0].text
                bound.add("" if bound_text is None else bound_text.decode("utf-8", "replace"))
            elif where == _DEFINITIONS:
                names = captures.get("name")
                if not names:
                    continue
                for capture, nodes in captures.items():
                    def_kind = _DEFINITION_CAPTURES.get(capture)
                    if def_kind is not None:
                        found = self.definition(names[0], nodes[0], def_kind)
                        if found is not None:
                            definitions.append(found)
                        elif def_kind is DefKind.VALUE:
                            bound.add(_text(names[0]))
                        elif def_kind is DefKind.MODULE:
                            local = self.local_module(names[0], nodes[0])
                            if local is not None:
                                local_modules.append(local)
            else:
                opens.append(captures)
        imports = [i for i in (self.import_(captures) for captures in opens) if i is not None]
        # one order, always: by line, path and kind (a reference is nothing else)
        found_refs.sort()
        imports.sort(key=lambda i: i.line)
        return ChunkSummary(
            tuple(definitions),
            tuple([_reference(path, ref_kind, line) for line, path, ref_kind in found_refs]),
            tuple(imports),
            frozenset(bound),
            tuple(local_modules),
        )

    def ancestors(self, node: Node, local: bool) -> tuple[list[Node], list[str], bool] | None:
        """The ancestors of `node` from the item down to its parent, their types, and
        whether they are all structure (the definition is module-level); None as
        soon as one is not, unless `local`. Found from the top: tree-sitter finds a
        node's parent by descending from the root, so walking up would pay that at
        every step."""
        item = self.item
        assert item is not None
        chain: list[Node] = []
        types: list[str] = []
        level = True
        current: Node | None = item
        while current is not None and current != node:
            kind = current.type
            if kind not in _STRUCTURAL:
                if not local:
                    return None
                level = False
            chain.append(current)
            types.append(kind)
            current = current.child_with_descendant(node)
        return chain, types, level

    def definition(
        self, name_node: Node, node: Node, kind: DefKind, local: bool = False
    ) -> Definition | None:
        found = self.ancestors(node, local)
        if found is None:
            return None
        chain, types, level = found
        if not level and not local:
            return None
        outer = self.outer
        scope = _scope_names(chain, types)
        name = _text(name_node)
        if name_node.type == "parenthesized_operator":
            name = "".join(name.split())  # `( +++ )` as a use of it is written: `(+++)`
        start = node.start_point[0]
        end = _last_line(node)
        sig_end = end
        owner: str | None = None
        body: tuple[str, ...] | None = None
        args: tuple[tuple[str, ...], ...] = ()
        signature: tuple[str, ...] | None = None
        dkind = kind
        node_type = node.type
        parent = _above(chain, outer, 1)
        if node_type == "let_binding":
            if parent is not None and parent.named_child(0) == node:
                start = parent.start_point[0]
            equals = next((c for c in node.children if c.type == "="), None)
            sig_end = equals.start_point[0] if equals is not None else end
            value = node.child_by_field_name("body")
            if any(c.type == "parameter" for c in node.named_children) or (
                value is not None and value.type in _FUNCTION_BODIES
            ):
                dkind = DefKind.FUNCTION
        elif node_type == "value_specification":
            typ = node.child_by_field_name("type")
            if typ is not None and typ.type == "function_type":
                dkind = DefKind.FUNCTION
        elif node_type == "type_binding":
            definition = parent if parent is not None else node
            start, end = definition.start_point[0], _last_line(definition)
            sig_end = end
        elif node_type in ("constructor_declaration", "field_declaration"):
            depth = 1
            binding = parent
            while binding is not None and binding.type not in _TYPE_HOLDERS:
                depth += 1
                binding = _above(chain, outer, depth)
            if binding is not None and binding.type == "exception_definition":
                dkind = DefKind.EXCEPTION if node_type == "constructor_declaration" else dkind
                start, end = binding.start_point[0], _last_line(binding)
            elif binding is not None:
                owner = _first_named(binding, "type_constructor")
                above = _above(chain, outer, depth + 1)
                definition = above if above is not None else binding
                start, end = definition.start_point[0], _last_line(definition)
            sig_end = end
        elif node_type == "module_binding":
            if parent is not None and parent.named_child(0) == node:
                start = parent.start_point[0]
            if any(c.type == "module_parameter" for c in node.named_children):
                dkind = DefKind.FUNCTOR
            value = node.child_by_field_name("body")
            constraint = node.child_by_field_name("module_type")
            if value is not None and value.type == "module_path":
                body = path_of(value)
            elif value is not None and value.type == "module_application":
                # `F (A) (B)` nests: ((F A) B); the innermost names the functor
                applications = [value]
                while (inner := applications[-1].child_by_field_name("functor")) is not None and (
                    inner.type == "module_application"
                ):
                    applications.append(inner)
                functor = applications[-1].child_by_field_name("functor")
                body = path_of(functor) if functor is not None else None
                args = tuple(
                    path_of(p)
                    for application in reversed(applications)
                    for a in application.named_children
                    if a != application.child_by_field_name("functor")
                    for p in ([a] if a.type == "module_path" else a.named_children)
                    if p.type == "module_path"
                )
            if constraint is not None:
                if constraint.type == "module_type_path":
                    signature = path_of(constraint)
                elif constraint.type == "module_type_constraint":
                    inner = next(
                        (c for c in constraint.named_children if c.type == "module_type_path"),
                        None,
                    )
                    signature = path_of(inner) if inner is not None else None
            opener = next(
                (c for c in (value, constraint) if c is not None and c.type in _CONTAINERS), None
            )
            sig_end = opener.start_point[0] if opener is not None else end
        elif node_type == "module_type_definition":
            value = node.child_by_field_name("body")
            if value is not None and value.type == "signature":
                sig_end = value.start_point[0]
        elif node_type == "class_binding":
            value = node.child_by_field_name("body")
            sig_end = value.start_point[0] if value is not None else end
        holder = self.structure_item(node, chain, types)
        if start == holder.start_point[0]:
            start = doc_head(holder).start_point[0]
        base = self.base
        return _definition(
            name,
            dkind,
            scope,
            name_node.start_point[0] - base,
            max(start - base, 0) if self.clamp else start - base,
            max(sig_end, start) - base,
            end - base,
            owner,
            body,
            args,
            signature,
            _recursive(chain, types, outer, self.keywords),
        )

    def structure_item(self, node: Node, chain: list[Node], types: list[str]) -> Node:
        """The structure item holding `node` (its ancestor whose parent is a container)."""
        depth = 0
        while True:
            kind = _type_above(types, chain, self.outer, depth + 1)
            if kind is None or kind in _CONTAINERS:
                found = _above(chain, self.outer, depth) if depth else node
                return found if found is not None else node
            depth += 1

    def local_module(self, name_node: Node, node: Node) -> Definition | None:
        """`let module M = P in e`, visible from its line to the end of `e`."""
        holder = node.parent
        let = holder.parent if holder is not None else None
        if holder is None or holder.type != "module_definition" or let is None:
            return None
        if let.type != "let_expression":
            return None
        found = self.definition(name_node, node, DefKind.MODULE, local=True)
        if found is None:
            return None
        end = _last_line(let) - self.base
        return replace(found, start_line=found.line, sig_end_line=found.line, end_line=end)

    def import_(self, captures: dict[str, list[Node]]) -> Import | None:
        """`open M`, `include M`, `M.(e)`, `let open M in e` (a module path's only)."""
        modules = captures.get("module")
        if not modules:
            return None
        module = modules[0]
        include = "include" in captures
        holder = captures.get("include") or captures.get("open") or [module]
        found = self.ancestors(holder[0], local=True)
        assert found is not None
        chain, types, level = found
        scope = _scope_names(chain, types)
        target = module
        if module.type == "typed_module_expression":
            target = next((c for c in module.named_children if c.type == "module_path"), module)
        path = path_of(target)
        if not path or target.type not in ("module_path", "extended_module_path"):
            return None
        end = -1
        if not level:
            extent = holder[0]
            if extent.type == "open_module" and extent.parent is not None:
                extent = extent.parent  # `let open M in e`
            end = _last_line(extent) - self.base
        line = module.start_point[0] - self.base
        return Import(path, include, line, scope, not level, end)


def _scope_names(chain: list[Node], types: list[str]) -> tuple[str, ...]:
    """The modules and module types among a node's ancestors, outermost first."""
    names: list[str] = []
    for node, kind in zip(chain, types, strict=True):
        if kind == "module_binding":
            names.append(_first_named(node, "module_name"))
        elif kind == "module_type_definition":
            names.append(_first_named(node, "module_type_name"))
    return tuple(names)


class ChunkCache:
    """Chunk summaries by (grammar, hash of the chunk's bytes), thread-safe.

    Two tiers keep memory flat over a long session: every summary that some
    file's summary still holds is found through a weak map (no cost beyond
    the entry), and a small LRU (cachetools) keeps the most recent ones alive
    after their file moved on, for an undo or a file read again from disk.
    Summaries of text that no longer exists anywhere are let go.
    """

    def __init__(self, maxsize: int = 1024) -> None:
        self.maxsize = maxsize
        self._recent: LRUCache[tuple[SourceKind, bytes], ChunkSummary] = LRUCache(maxsize)
        self._live: weakref.WeakValueDictionary[tuple[SourceKind, bytes], ChunkSummary] = (
            weakref.WeakValueDictionary()
        )
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[SourceKind, bytes]) -> ChunkSummary | None:
        with self._lock:
            found = self._recent.get(key)
            if found is None:
                found = self._live.get(key)
                if found is not None:
                    self._recent[key] = found
            if found is not None:
                self.hits += 1
            else:
                self.misses += 1
            return found

    def put(self, key: tuple[SourceKind, bytes], value: ChunkSummary) -> None:
        with self._lock:
            self._recent[key] = value
            self._live[key] = value

    def __len__(self) -> int:
        """Summaries the cache itself keeps alive (at most `maxsize`)."""
        return len(self._recent)


class FileSummary:
    """A file's chunks; absolute definitions, uses and opens are derived on demand."""

    def __init__(self, kind: SourceKind, line_count: int, chunks: tuple[Chunk, ...]) -> None:
        self.kind = kind
        self.line_count = line_count
        self.chunks = chunks

    @cached_property
    def definitions(self) -> tuple[Definition, ...]:
        return tuple(d.shifted(c.start_line) for c in self.chunks for d in c.summary.definitions)

    @property
    def references(self) -> tuple[Reference, ...]:
        """Every use in the file (not kept: the engine reads them per item)."""
        return tuple(self.references_in(0, self.line_count))

    @cached_property
    def imports(self) -> tuple[Import, ...]:
        return tuple(i.shifted(c.start_line) for c in self.chunks for i in c.summary.imports)

    @cached_property
    def local_modules(self) -> tuple[Definition, ...]:
        return tuple(d.shifted(c.start_line) for c in self.chunks for d in c.summary.local_modules)

    def references_in(self, start: int, end: int) -> Iterator[Reference]:
        """Uses on lines `start`..`end`, without building (and keeping) the whole
        file's list: a slice looks at a few items of many files."""
        for c in self.chunks:
            if c.end_line < start or c.start_line > end:
                continue
            for r in c.summary.references:
                line = r.line + c.start_line
                if start <= line <= end:
                    yield replace(r, line=line) if c.start_line else r

    def references_to(self, name: str) -> Iterator[Reference]:
        """Uses whose last component is `name` (callers of a definition)."""
        for c in self.chunks:
            for r in c.summary.references:
                if r.path[-1] == name:
                    yield replace(r, line=r.line + c.start_line) if c.start_line else r

    @cached_property
    def qualified(self) -> Counter[tuple[str, str]]:
        """Uses of `M.name` by (the module just before the name, the name): what the
        file takes from which module, for the project's usage counts."""
        return self._uses()[0]

    @cached_property
    def modules_named(self) -> frozenset[str]:
        """Every module name a path of the file goes through (`Lwt` of `Lwt.Infix.( >>= )`,
        `Import` of `open! Import`)."""
        return self._uses()[1]

    @cached_property
    def used_names(self) -> frozenset[str]:
        """The last component of every use: a quick filter when looking for callers."""
        return self._uses()[2]

    def _uses(self) -> tuple[Counter[tuple[str, str]], frozenset[str], frozenset[str]]:
        """`qualified`, `modules_named` and `used_names` in one pass over the uses
        (the index asks for all three of every file), each then kept as computed."""
        pairs: list[tuple[str, str]] = []
        modules: set[str] = set()
        used: set[str] = set()
        module_kind = RefKind.MODULE
        for c in self.chunks:
            for r in c.summary.references:
                path = r.path
                used.add(path[-1])
                if r.kind is module_kind:
                    modules.update(path)
                elif len(path) > 1:
                    pairs.append((path[-2], path[-1]))
                    modules.update(path[:-1])
            for i in c.summary.imports:
                modules.update(i.path)
        found = (Counter(pairs), frozenset(modules), frozenset(used))
        self.__dict__.update(qualified=found[0], modules_named=found[1], used_names=found[2])
        return found

    @cached_property
    def _starts(self) -> list[int]:
        return [c.start_line for c in self.chunks]

    def chunk_at(self, line: int) -> Chunk | None:
        i = bisect_right(self._starts, line) - 1
        if i >= 0 and self.chunks[i].start_line <= line <= self.chunks[i].end_line:
            return self.chunks[i]
        return None

    @cached_property
    def _by_name(self) -> dict[str, tuple[Definition, ...]]:
        out: dict[str, list[Definition]] = {}
        for d in self.definitions:
            out.setdefault(d.name, []).append(d)
        return {name: tuple(ds) for name, ds in out.items()}

    def defined(self, name: str) -> tuple[Definition, ...]:
        """The file's definitions named `name`, in file order (a lookup, not a scan: the
        resolver asks this for every name through every module it walks)."""
        return self._by_name.get(name, ())


def _item_item_key(kind: SourceKind, data: bytes, start: int, end: int) -> tuple[SourceKind, bytes]:
    return (kind, hashlib.blake2b(data[start:end], digest_size=16).digest())


def summarize(tree: Tree, data: bytes, kind: SourceKind, cache: ChunkCache) -> FileSummary:
    """The summary of a parsed file, reusing cached chunk summaries."""
    chunks = tuple(_chunks(tree.root_node.named_children, data, kind, cache))
    return FileSummary(kind, _line_count(data), chunks)


def resummarize(
    previous: FileSummary, tree: Tree, data: bytes, kind: SourceKind, cache: ChunkCache, edit: Edit
) -> FileSummary:
    """The summary after one edit: chunks away from it are kept (those after it
    shifted), only the ones around it are read from the new tree.

    The same result as `summarize`, without visiting every top-level item: on a
    5,000-line file that is the difference between a few milliseconds per
    keystroke and a fraction of one.
    """
    chunks = previous.chunks
    if not chunks:
        return summarize(tree, data, kind, cache)
    # the chunks the edit touches, and one more on each side (a comment may attach
    # to the next item, an edit may join two items)
    lo = max(0, bisect_left([c.end_byte for c in chunks], edit.start) - 1)
    hi = min(len(chunks), bisect_right([c.start_byte for c in chunks], edit.old_end) + 1)
    delta = edit.new_end - edit.old_end
    region_start = chunks[lo].start_byte
    last = chunks[hi - 1]
    region_end = last.end_byte + delta if last.end_byte >= edit.old_end else None
    if region_end is None or hi == len(chunks):
        region_end = None  # to the end of the file
    nodes: list[Node] = []
    node = tree.root_node.first_named_child_for_byte(region_start)
    while node is not None and (region_end is None or node.start_byte < region_end):
        nodes.append(node)
        node = node.next_named_sibling
    # keystroke versions of an item are not kept in the cache: each would stay
    # there long after the next keystroke made it garbage
    middle = list(_chunks(nodes, data, kind, cache, store=False))
    if region_end is not None and (not middle or middle[-1].end_byte != region_end):
        return summarize(tree, data, kind, cache)  # the edit moved item boundaries
    if middle and middle[0].start_byte < region_start:
        return summarize(tree, data, kind, cache)
    tail = tuple(
        Chunk(
            c.start_line + edit.line_delta,
            c.end_line + edit.line_delta,
            c.start_byte + delta,
            c.end_byte + delta,
            c.summary,
        )
        for c in chunks[hi:]
    )
    return FileSummary(kind, _line_count(data), (*chunks[:lo], *middle, *tail))


def _line_count(data: bytes) -> int:
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


def _chunks(
    nodes: Iterable[Node], data: bytes, kind: SourceKind, cache: ChunkCache, store: bool = True
) -> Iterator[Chunk]:
    """Top-level items with the comments right above them, summarized or from the cache."""
    pending: Node | None = None  # the first of the comments right above the next item
    previous_end = -2
    reader: _Reader | None = None
    parent: Node | None = None  # of every node: they are the root's children
    for node in nodes:
        if node.type == "comment":
            if trails(node):
                pending = None
                previous_end = -2
                continue
            if pending is None or node.start_point[0] > previous_end + 1:
                pending = node
            previous_end = node.end_point[0]
            continue
        head = pending if pending is not None and previous_end + 1 >= node.start_point[0] else node
        pending = None
        previous_end = node.end_point[0]
        key = _item_item_key(kind, data, head.start_byte, node.end_byte)
        summary = cache.get(key)
        if summary is None:
            if reader is None:
                reader, parent = _Reader(kind), node.parent
            summary = reader.read(node, head.start_point[0], parent)
            if store:
                cache.put(key, summary)
        yield Chunk(head.start_point[0], _last_line(node), head.start_byte, node.end_byte, summary)
