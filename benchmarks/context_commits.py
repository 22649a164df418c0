"""Context recall measured on real commits of the projects in `../shared/corpora`.

For each small commit (see `corpus.py`) the request is made on the state
before: the commit's subject as the instruction, the cursor at its first
change. The prompt is the one the pipeline sends (`pipeline.prepare`, then
`prompt.build_messages`, default settings and budget).

- **Needed**: every qualified reference `M.name` (capitalised `M`, lowercase
  `name`) in the commit's added lines where `M` names exactly one file of the
  project other than the target (`m.mli`, else `m.ml`; `m` or `M`) and that
  file, before the commit, has a defining line for `name` (`val`, `external`,
  `let`, `let rec`, `and`, `type`).
- **Hit**: one of those defining lines, whitespace-trimmed, appears in the
  prompt outside the target file's own lines.
- **Size**: characters of the prompt outside the target file's lines (the
  other files' excerpts with their headers).
- **Naive reference**: the whole interface (`.mli`, else `.ml`) of every module
  the target file names, resolved by the same file-name rule.

    python -m benchmarks.context_commits [--commits 30] [--projects lwt,base]
        [--budget N] [--misses] [--no-fixtures]
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types

from ocaml_ai_ls.config import Settings
from ocaml_ai_ls.context.index import WorkspaceIndex
from ocaml_ai_ls.context.render import render_blocks
from ocaml_ai_ls.context.summary import ChunkCache
from ocaml_ai_ls.documents import DocumentStore
from ocaml_ai_ls.pipeline import prepare
from ocaml_ai_ls.positions import Encoding
from ocaml_ai_ls.prompt import build_messages
from ocaml_ai_ls.request import GenerateRequest
from ocaml_ai_ls.uris import path_to_uri
from ocaml_ai_ls.workspace import Workspace

from .corpus import CACHE, PROJECTS, Case, cases, checkout, clone, git

#: `M.name`, maybe behind other modules (`Lwt.Infix.return`: `Infix.return`).
_QUALIFIED = re.compile(
    r"(?<![A-Za-z0-9_'.])((?:[A-Z][A-Za-z0-9_']*\.)*)([A-Z][A-Za-z0-9_']*)\.([a-z_][A-Za-z0-9_']*)"
)
_MODULE_WORD = re.compile(r"(?<![A-Za-z0-9_'])[A-Z][A-Za-z0-9_']*")


class Tree:
    """The files of one commit, read straight from git (no checkout needed)."""

    def __init__(self, repo: Path, commit: str) -> None:
        self.repo = repo
        self.commit = commit
        self.paths = git(repo, "ls-tree", "-r", "--name-only", commit).splitlines()
        self._texts: dict[str, str] = {}

    def read(self, rel: str) -> str:
        if rel not in self._texts:
            data = subprocess.run(
                ["git", "-C", str(self.repo), "show", f"{self.commit}:{rel}"],
                check=True,
                capture_output=True,
            ).stdout
            self._texts[rel] = data.decode("utf-8", "replace")
        return self._texts[rel]


def module_files(tree: Tree) -> dict[str, list[str]]:
    """Module name → relative paths of the files named after it (`m.ml`, `M.mli`...)."""
    out: dict[str, list[str]] = {}
    for rel in sorted(tree.paths):
        name = rel.rsplit("/", 1)[-1]
        stem = name.split(".", 1)[0]
        if not name.endswith((".ml", ".mli")) or not stem:
            continue
        out.setdefault(stem[0].upper() + stem[1:], []).append(rel)
    return out


def file_of(module: str, files: dict[str, list[str]], target: str) -> str | None:
    """The one file `module` names: its `.mli`, else its `.ml`; None when not exactly one."""
    named = [f for f in files.get(module, ()) if f != target]
    for suffix in (".mli", ".ml"):
        found = [f for f in named if f.endswith(suffix)]
        if found:
            return found[0] if len(found) == 1 else None
    return None


def defining_lines(text: str, name: str) -> list[str]:
    """Lines of `text` that define `name` (`val`, `external`, `let`, `let rec`, `and`,
    `type`), whitespace-trimmed."""
    escaped = re.escape(name)
    pattern = re.compile(
        r"^\s*(?:val|external|let(?:\s+rec)?|and|"
        r"type(?:\s+nonrec)?(?:\s+(?:'[A-Za-z0-9_]+|\([^)]*\)))?)"
        rf"\s+{escaped}(?![A-Za-z0-9_'])"
    )
    return [line.strip() for line in text.splitlines() if pattern.match(line)]


@dataclass(frozen=True)
class Need:
    module: str
    name: str
    file: str
    lines: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.module}.{self.name} ({self.file})"


def needs_of(case: Case, tree: Tree, files: dict[str, list[str]]) -> list[Need]:
    """What the commit's added lines use from other files of the project."""
    out: dict[tuple[str, str], Need] = {}
    for line in case.added:
        for m in _QUALIFIED.finditer(line):
            module, name = m.group(2), m.group(3)
            if (module, name) in out:
                continue
            rel = file_of(module, files, case.target)
            if rel is None:
                continue
            lines = defining_lines(tree.read(rel), name)
            if lines:
                out[(module, name)] = Need(module, name, rel, tuple(dict.fromkeys(lines)))
    return list(out.values())


_LOWER_WORD = re.compile(r"(?<![A-Za-z0-9_'.])[a-z_][A-Za-z0-9_']*")


def local_needs(case: Case, tree: Tree) -> list[Need]:
    """Names the commit's added lines of the target file use unqualified and the target
    file defines (a secondary measure: the file's own definitions, shown in its lines)."""
    text = tree.read(case.target)
    out: dict[str, Need] = {}
    for f in case.files:
        if f.new != case.target and f.old != case.target:
            continue
        for h in f.hunks:
            for line in h.added:
                for name in _LOWER_WORD.findall(line):
                    if name not in out and (lines := defining_lines(text, name)):
                        out[name] = Need("", name, case.target, tuple(dict.fromkeys(lines)))
    return list(out.values())


_OPEN = re.compile(r"^open!?\s+((?:[A-Z][A-Za-z0-9_']*\.)*[A-Z][A-Za-z0-9_']*)", re.MULTILINE)
_KEYWORDS = frozenset(
    [
        "and",
        "as",
        "assert",
        "begin",
        "class",
        "do",
        "done",
        "downto",
        "else",
        "end",
        "exception",
        "external",
        "false",
        "for",
        "fun",
        "function",
        "functor",
        "if",
        "in",
        "include",
        "inherit",
        "let",
        "match",
        "method",
        "module",
        "mutable",
        "new",
        "not",
        "object",
        "of",
        "open",
        "or",
        "private",
        "rec",
        "sig",
        "struct",
        "then",
        "to",
        "true",
        "try",
        "type",
        "val",
        "virtual",
        "when",
        "while",
        "with",
    ]
)


def opened_needs(case: Case, tree: Tree, files: dict[str, list[str]]) -> list[Need]:
    """Names a changed file's added lines use unqualified that come from a module the
    file opens (`open Lwt.Infix` and `>>=`'s friends, `open! Import`): the definition,
    by the same file rule, in the last such module that has one, unless the file
    defines the name itself. A column apart: resolving opens is a guess here."""
    out: dict[tuple[str, str], Need] = {}
    for f in case.files:
        if f.old is None or f.new is None:
            continue
        own = tree.read(f.old)
        opened = [m.rsplit(".", 1)[-1] for m in _OPEN.findall(own)]
        for h in f.hunks:
            for line in h.added:
                for name in _LOWER_WORD.findall(line):
                    if name in _KEYWORDS or defining_lines(own, name):
                        continue
                    for module in reversed(opened):
                        rel = file_of(module, files, f.old)
                        if rel is not None and (lines := defining_lines(tree.read(rel), name)):
                            key = (module, name)
                            out.setdefault(
                                key, Need(module, name, rel, tuple(dict.fromkeys(lines)))
                            )
                            break
    return list(out.values())


@dataclass
class Column:
    """One way of choosing context: per commit, what it showed and how big it was."""

    name: str
    hits: int = 0
    needs: int = 0
    sizes: list[int] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    def score(self, case: Case, needs: Sequence[Need], shown: str) -> None:
        self.sizes.append(len(shown))
        for need in needs:
            self.needs += 1
            if any(line in shown for line in need.lines):
                self.hits += 1
            else:
                self.missed.append(f"{case.project} {case.commit[:8]} {case.target}: {need.label}")

    @property
    def recall(self) -> float:
        return self.hits / self.needs if self.needs else 1.0


def ours(case: Case, root: Path, index: WorkspaceIndex, settings: Settings) -> tuple[str, str]:
    """The prompt's text outside the target file, as the pipeline builds it, and the
    whole prompt."""
    ws = Workspace(root, index.documents or DocumentStore())
    position = types.Position(line=case.line - 1, character=0)
    req = GenerateRequest(
        path_to_uri(root / case.target), case.subject, types.Range(start=position, end=position)
    )
    prep = prepare(req, ws, settings, Encoding.UTF8, index)
    user = build_messages(prep.context, case.subject)[1].content
    outside = [text for rel, text in render_blocks(prep.context) if rel != prep.context.rel]
    assert all(text in user for text in outside)  # the blocks are what the model reads
    return "\n\n".join(outside), user


def naive(case: Case, tree: Tree, files: dict[str, list[str]]) -> str:
    """The whole interface of every module the target file names."""
    text = tree.read(case.target)
    chosen = {file_of(m, files, case.target) for m in set(_MODULE_WORD.findall(text))}
    return "\n\n".join(tree.read(rel) for rel in sorted(f for f in chosen if f is not None))


@dataclass
class Report:
    project: str
    commits: int = 0
    columns: dict[str, Column] = field(default_factory=dict)
    slice_ms: list[float] = field(default_factory=list)

    def column(self, name: str) -> Column:
        return self.columns.setdefault(name, Column(name))

    def add(self, other: Report) -> None:
        self.commits += other.commits
        self.slice_ms += other.slice_ms
        for name, col in other.columns.items():
            mine = self.column(name)
            mine.hits += col.hits
            mine.needs += col.needs
            mine.sizes += col.sizes
            mine.missed += col.missed


def select(project: str, limit: int, all_commits: bool = False) -> list[Case]:
    """The newest `limit` small commits of a project whose change needs something from
    other files (all small commits with `all_commits`)."""
    repo = clone(project)
    out: list[Case] = []
    for case in cases(project, limit * 10, repo):
        if len(out) >= limit:
            break
        tree = Tree(repo, case.parent)
        if all_commits or needs_of(case, tree, module_files(tree)):
            out.append(case)
    return out


def measure(job: tuple[int, list[Case], Settings]) -> list[Report]:
    """Every case of one worker: each project's cases in one work tree of the worker's
    own, with one chunk cache (commits share most files)."""
    number, chosen, settings = job
    reports: dict[str, Report] = {}
    caches: dict[str, ChunkCache] = {}
    for case in chosen:
        repo = clone(case.project)
        report = reports.setdefault(case.project, Report(case.project))
        cache = caches.setdefault(case.project, ChunkCache(maxsize=200_000))
        root = checkout(repo, case.parent, CACHE / "work" / f"{case.project}-{number}")
        tree = Tree(repo, case.parent)
        files = module_files(tree)
        needs = needs_of(case, tree, files)
        index = WorkspaceIndex(root, DocumentStore(), cache)
        index.scan()
        started = time.perf_counter()
        shown, whole = ours(case, root, index, settings)
        report.slice_ms.append((time.perf_counter() - started) * 1000)
        report.column("ours").score(case, needs, shown)
        report.column("local").score(case, local_needs(case, tree), whole)
        report.column("opened").score(case, opened_needs(case, tree, files), shown)
        report.column("naive").score(case, needs, naive(case, tree, files))
        report.commits += 1
    return list(reports.values())


def print_table(report: Report) -> None:
    print(f"\n{report.project}: {report.commits} commits")
    print(f"  {'column':<8} {'recall':>16} {'size median':>12} {'size max':>10}")
    for col in report.columns.values():
        median = statistics.median(col.sizes) if col.sizes else 0
        top = max(col.sizes, default=0)
        hits = f"{col.recall:.0%} ({col.hits}/{col.needs})"
        print(f"  {col.name:<8} {hits:>16} {median:>12,.0f} {top:>10,}")
    if report.slice_ms:
        ms = sorted(report.slice_ms)
        print(
            f"  first slice after indexing (no warm-up): "
            f"p50 {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=30)
    parser.add_argument("--projects", default=",".join(PROJECTS))
    parser.add_argument("--budget", type=int, default=None, help="context.budget_tokens")
    parser.add_argument(
        "--all-commits", action="store_true", help="count commits that need nothing too"
    )
    parser.add_argument("--misses", action="store_true", help="list every missed need")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--no-fixtures", action="store_true", help="skip the fixture tasks")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.budget is not None:
        from dataclasses import replace

        settings = replace(settings, context=replace(settings.context, budget_tokens=args.budget))
    budget = settings.context.budget_tokens
    print(f"context on real commits: default settings, budget {budget} tokens")
    projects = args.projects.split(",")
    chosen = [c for p in projects for c in select(p, args.commits, args.all_commits)]
    jobs = [(k, chosen[k :: args.jobs], settings) for k in range(args.jobs)]
    with multiprocessing.Pool(args.jobs) as pool:
        parts = pool.map(measure, jobs)
    reports = {p: Report(p) for p in projects}
    for part in parts:
        for report in part:
            reports[report.project].add(report)
    for report in reports.values():
        print_table(report)
        if args.misses:
            for col in report.columns.values():
                for miss in col.missed:
                    print(f"    {col.name} missed {miss}")
    if not args.no_fixtures:
        from .context_recall import evaluate, totals

        recall, _precision = totals(evaluate(budget))
        print(f"\nfixture tasks (tests/fixtures/projects): recall {recall:.1%}")


if __name__ == "__main__":
    main()
