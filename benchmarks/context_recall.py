"""Recall and precision of the context slicer on the fixture tasks.

Each task in `tests/fixtures/projects/tasks.toml` names a line inside the item
to edit and the definitions a correct edit needs (`FILE:LINE:NAME`, with `|`
between alternatives). A need is *recalled* when a packed piece of FILE shows
LINE. *Precision* is the share of pieces fetched from elsewhere (ranks 4-5:
definitions and their types) that show at least one need; the current file,
the `.mli`, the dune stanza and callers are context by design and are not
counted against it.

    python -m benchmarks.context_recall [--budget 6000] [--misses]
"""

from __future__ import annotations

import argparse
import statistics
import tomllib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ocaml_ai_ls.context.index import WorkspaceIndex
from ocaml_ai_ls.context.model import DEFINITION, TYPE, Context
from ocaml_ai_ls.context.slicer import build_context
from ocaml_ai_ls.documents import DocumentStore
from ocaml_ai_ls.positions import encode
from ocaml_ai_ls.workspace import Workspace

PROJECTS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "projects"


@dataclass(frozen=True)
class Need:
    """One needed definition: any of its (file, line) alternatives will do."""

    text: str
    places: tuple[tuple[str, int], ...]

    @classmethod
    def parse(cls, text: str) -> Need:
        places = []
        for alt in text.split("|"):
            rel, line, _name = alt.split(":", 2)
            places.append((rel, int(line)))
        return cls(text, tuple(places))


@dataclass(frozen=True)
class Task:
    id: str
    project: str
    file: str
    line: int
    instruction: str
    needs: tuple[Need, ...]


@dataclass(frozen=True)
class Outcome:
    task: Task
    found: tuple[Need, ...]
    missed: tuple[Need, ...]
    fetched: int  # pieces of ranks 4-5
    useful: int  # of those, pieces that show a need
    tokens: int

    @property
    def recall(self) -> float:
        return len(self.found) / len(self.task.needs) if self.task.needs else 1.0


def load_tasks(path: Path = PROJECTS / "tasks.toml") -> list[Task]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [
        Task(
            t["id"],
            t["project"],
            t["file"],
            int(t["line"]),
            t["instruction"],
            tuple(Need.parse(n) for n in t["needs"]),
        )
        for t in data["task"]
    ]


def shown(context: Context) -> set[tuple[str, int]]:
    return {(p.rel, n) for p in context.pieces for n in p.numbers}


def slice_for(task: Task, index: WorkspaceIndex, budget: int) -> Context:
    root = PROJECTS / task.project
    ws = Workspace(root, index.documents or DocumentStore())
    current = ws.read(root / task.file)
    assert current is not None, task.file
    lines = current.text.splitlines(keepends=True)
    offset = len(encode("".join(lines[: task.line - 1])))
    return build_context(
        ws,
        current,
        current.text,
        (offset, offset),
        instruction=task.instruction,
        budget=budget,
        index=index,
    )


def evaluate(budget: int = 6000, tasks: Sequence[Task] | None = None) -> list[Outcome]:
    """Slice every task at `budget`, with one index per project (as the server keeps)."""
    indexes: dict[str, WorkspaceIndex] = {}
    outcomes = []
    for task in tasks if tasks is not None else load_tasks():
        index = indexes.get(task.project)
        if index is None:
            index = indexes[task.project] = WorkspaceIndex(PROJECTS / task.project, DocumentStore())
            index.scan()
        context = slice_for(task, index, budget)
        lines = shown(context)
        found = tuple(n for n in task.needs if any(p in lines for p in n.places))
        missed = tuple(n for n in task.needs if n not in found)
        places = {p for n in task.needs for p in n.places}
        fetched = [p for p in context.pieces if p.rank in (DEFINITION, TYPE)]
        useful = sum(1 for p in fetched if any((p.rel, n) in places for n in p.numbers))
        outcomes.append(Outcome(task, found, missed, len(fetched), useful, context.tokens))
    return outcomes


def totals(outcomes: Sequence[Outcome]) -> tuple[float, float]:
    """(recall, precision) summed over needs and fetched pieces."""
    needs = sum(len(o.task.needs) for o in outcomes)
    found = sum(len(o.found) for o in outcomes)
    fetched = sum(o.fetched for o in outcomes)
    useful = sum(o.useful for o in outcomes)
    return found / needs if needs else 1.0, useful / fetched if fetched else 1.0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=6000)
    parser.add_argument("--misses", action="store_true", help="list every missed need")
    args = parser.parse_args(argv)
    outcomes = evaluate(args.budget)
    by_project: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_project[o.task.project].append(o)
    print(f"context slices at a budget of {args.budget} tokens")
    header = f"{'project':<10} {'tasks':>5} {'needs':>5} {'recall':>7} {'precision':>9}"
    print(header + f" {'tokens (median)':>15}")
    for name, group in [*sorted(by_project.items()), ("all", outcomes)]:
        recall, precision = totals(group)
        needs = sum(len(o.task.needs) for o in group)
        tokens = statistics.median(o.tokens for o in group)
        print(
            f"{name:<10} {len(group):>5} {needs:>5} {recall:>7.1%} {precision:>9.1%}"
            f" {tokens:>15.0f}"
        )
    if args.misses:
        for o in outcomes:
            for n in o.missed:
                print(f"  missed {o.task.id} ({o.task.file}:{o.task.line}): {n.text}")


if __name__ == "__main__":
    main()
