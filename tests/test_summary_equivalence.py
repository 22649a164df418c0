"""Making summaries faster did not change them (#15).

The compact form of `benchmarks/summary_equivalence.py` (which reads every file of
lwt, base and ocaml-containers): the fixture projects summarised by this tree and
by `summary.py` as it was before the speed work, and a whole file read at once
against its items read one at a time (a reader's memory of paths and keywords
must not leak from one item into the next).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from benchmarks.summary_equivalence import FIXTURES, facts, load_at
from ocaml_ai_ls.context import summary
from ocaml_ai_ls.context.parsing import SourceKind, parse
from ocaml_ai_ls.context.summary import ChunkCache, _Reader, summarize

#: The last commit before the speed work: its `summary.py` is the reference.
BEFORE = "bbb8f23728937c8415376ee1060b4641e6adbef6"


def sources() -> list[tuple[Path, SourceKind, bytes]]:
    out = []
    for path in sorted(FIXTURES.rglob("*.ml*")):
        kind = SourceKind.of(path)
        if kind is not None:
            out.append((path, kind, path.read_bytes()))
    assert len(out) >= 20
    return out


def test_fixture_summaries_are_those_of_the_code_before() -> None:
    try:
        before = load_at(BEFORE)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"no git history with {BEFORE[:7]}")
    for path, kind, data in sources():
        tree = parse(data, kind)
        old = facts(before.summarize(tree, data, kind, before.ChunkCache()))
        new = facts(summarize(tree, data, kind, ChunkCache()))
        assert new == old, path


def test_a_file_read_at_once_is_its_items_read_one_by_one() -> None:
    for path, kind, data in sources():
        tree = parse(data, kind)
        whole = summarize(tree, data, kind, ChunkCache())
        items = [n for n in tree.root_node.named_children if n.type != "comment"]
        assert len(items) == len(whole.chunks), path
        for node, chunk in zip(items, whole.chunks, strict=True):
            alone = _Reader(kind).read(node, chunk.start_line)
            assert alone == chunk.summary, (path, chunk.start_line)
            if chunk.start_line == node.start_point[0]:
                assert summary.summarize_item(node, kind) == chunk.summary
