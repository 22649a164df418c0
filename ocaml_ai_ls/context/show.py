"""`ocaml-ai-ls context PATH:LINE`: print the slice a request there would get.

The same library call the server makes, without a server or a model, so a
user can see why the model did (not) know about a definition.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TextIO

from lsprotocol import types

from ..config import SettingsError, SettingsLayers, read_config_file
from ..documents import DocumentStore
from ..paths import is_inside
from ..pipeline import GenerationError, prepare
from ..positions import Encoding
from ..request import GenerateRequest
from ..workspace import Workspace, find_root
from .index import WorkspaceIndex
from .model import ROLES, TARGET, Context
from .render import explain
from .summary_store import SummaryStore


class ContextError(Exception):
    """A location or root that cannot be sliced; the message says why."""


def slice_at(path: Path, line: int | None, root: Path | None, instruction: str = "") -> Context:
    """The context for a request on `path` at 1-based `line` (None: the whole file)."""
    root = root.resolve() if root is not None else find_root(path)
    if not is_inside(path, root):
        raise ContextError(f"{path} is not inside the root {root}")
    try:
        settings, errors = SettingsLayers(file=read_config_file(root)).build()
    except SettingsError as e:
        raise ContextError(str(e)) from None
    if errors:
        raise ContextError("; ".join(errors))
    documents = DocumentStore()
    index = WorkspaceIndex(root, documents, store=SummaryStore.for_root(root))
    index.scan()
    ws = Workspace(root, documents)
    current = ws.read(path)
    if current is None:
        raise ContextError(f"cannot read {path}")
    at = None
    if line is not None:
        count = len(current.text.splitlines())
        if line > max(count, 1):  # an empty file still has its line 1
            raise ContextError(f"line {line} is past the end of the file ({count} lines)")
        start = types.Position(line=line - 1, character=0)
        at = types.Range(start=start, end=start)
    req = GenerateRequest(current.uri, instruction, at)
    try:  # the same preparation as a request to the server
        return prepare(req, ws, settings, Encoding.UTF8, index).context
    except GenerationError as e:
        raise ContextError(str(e)) from None


def print_context(context: Context, out: TextIO = sys.stdout) -> None:
    """Each piece with its rank, file, lines and cost, then what did not fit."""
    print(f"{context.rel}: {context.tokens} of {context.budget} tokens", file=out)
    for p in context.pieces:
        head = f"[{p.rank} {ROLES[p.rank]}] {p.rel}:{p.first_line}-{p.last_line}"
        score = "" if p.rank == TARGET else f", score {p.score:.3f}"
        print(f"\n{head}  {p.label} ({p.tokens} tokens{score})", file=out)
        width = len(str(p.last_line))
        for n, text in zip(p.numbers, p.texts, strict=True):
            print(f"{n:>{width}}| {text}", file=out)
    for d in context.dropped:
        p = d.piece
        where = f"{p.rel}:{p.first_line}-{p.last_line}"
        print(f"\ndropped [{p.rank}] {where} {p.label} ({p.tokens} tokens)", file=out)


def run_context(
    path: Path,
    line: int | None,
    root: Path | None,
    instruction: str,
    as_json: bool,
    explained: bool = False,
) -> int:
    try:
        context = slice_at(path, line, root, instruction)
    except ContextError as e:
        print(f"ocaml-ai-ls context: {e}", file=sys.stderr)
        return 2
    try:
        if as_json:
            found = context.to_json()
            if explained:
                found["explain"] = explain(context)
            json.dump(found, sys.stdout, indent=2)
            print()
        elif explained:
            print(explain(context))
        else:
            print_context(context)
        sys.stdout.flush()
    except BrokenPipeError:  # `| head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
