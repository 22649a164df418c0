"""Whether file summaries are the same as those of an earlier `summary.py`.

A check for changes meant to make summarising faster without changing what it
says: every `.ml`/`.mli` of the corpora (`lwt`, `base`, `ocaml-containers` at
their bundles' heads, checked out under `benchmarks/.cache/`) and of the
fixture projects is parsed once and summarised by this tree's
`ocaml_ai_ls.context.summary` and by the one at `--rev` (loaded from git beside
it). Compared per file: chunk boundaries, and per chunk its definitions,
references, imports, bound names and local modules; then the file-level
definitions, imports, local modules, references, qualified uses, module names
and used names. Prints counts, the time each took, and the first differences.

    python -m benchmarks.summary_equivalence [--rev REV] [--projects lwt,base,...]
        [--root DIR ...] [--show N]
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from ocaml_ai_ls.context import summary as current
from ocaml_ai_ls.context.index import WorkspaceIndex, read_source
from ocaml_ai_ls.context.parsing import SourceKind, parse

from .corpus import CACHE, PROJECTS, checkout, clone, git

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXTURES = REPO / "tests" / "fixtures" / "projects"


def load_at(rev: str) -> ModuleType:
    """`ocaml_ai_ls/context/summary.py` as of `rev`, as a sibling module of the current one."""
    source = git(REPO, "show", f"{rev}:ocaml_ai_ls/context/summary.py")
    name = "ocaml_ai_ls.context._summary_at_rev"
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "ocaml_ai_ls.context"
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:summary.py", "exec"), module.__dict__)
    return module


def plain(value: Any) -> Any:
    """Dataclasses, enums and containers as plain tuples, strings and numbers."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            *(plain(getattr(value, f.name)) for f in dataclasses.fields(value)),
        )
    if isinstance(value, (frozenset, set)):
        return tuple(sorted(plain(v) for v in value))
    if isinstance(value, dict):
        return tuple(sorted((plain(k), plain(v)) for k, v in value.items()))
    if isinstance(value, (tuple, list)):
        return tuple(plain(v) for v in value)
    return value


def facts(summary: Any) -> dict[str, Any]:
    """What a file summary says, part by part."""
    out: dict[str, Any] = {"line_count": summary.line_count}
    out["chunks"] = tuple(
        (c.start_line, c.end_line, c.start_byte, c.end_byte) for c in summary.chunks
    )
    for part in ("definitions", "references", "imports", "bound", "local_modules"):
        out[f"chunk {part}"] = tuple(plain(getattr(c.summary, part)) for c in summary.chunks)
    for part in (
        "definitions",
        "imports",
        "local_modules",
        "references",
        "qualified",
        "modules_named",
        "used_names",
    ):
        out[part] = plain(getattr(summary, part))
    return out


def roots(projects: list[str], extra: list[Path]) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for project in projects:
        repo = clone(project)
        head = git(repo, "rev-parse", "HEAD").strip()
        out.append((project, checkout(repo, head, CACHE / "index_speed" / project)))
    out.append(("fixtures", FIXTURES))
    out.extend((str(p), p) for p in extra)
    return out


def first_difference(a: Any, b: Any) -> str:
    if isinstance(a, tuple) and isinstance(b, tuple):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            if x != y:
                return f"[{i}] " + first_difference(x, y)
        return f"lengths {len(a)} vs {len(b)}"
    return f"{a!r} vs {b!r}"


def compare(name: str, root: Path, before: ModuleType, show: int) -> int:
    """Files of `root` whose summaries differ (printed, at most `show` of them)."""
    paths = [p for p in WorkspaceIndex(root).walk() if SourceKind.of(p) is not None]
    files = differ = lines = 0
    old_s = new_s = 0.0
    parts: dict[str, int] = {}
    for path in sorted(paths):
        kind = SourceKind.of(path)
        data = read_source(path)
        if kind is None or data is None:
            continue
        files += 1
        lines += data.count(b"\n")
        tree = parse(data, kind)
        start = time.perf_counter()
        old_summary = before.summarize(tree, data, kind, before.ChunkCache())
        old_s += time.perf_counter() - start
        start = time.perf_counter()
        new_summary = current.summarize(tree, data, kind, current.ChunkCache())
        new_s += time.perf_counter() - start
        old, new = facts(old_summary), facts(new_summary)
        if old == new:
            continue
        differ += 1
        for part in old:
            if old[part] != new[part]:
                parts[part] = parts.get(part, 0) + 1
                if differ <= show:
                    where = path.relative_to(root)
                    print(f"  {where}: {part}: {first_difference(old[part], new[part])[:300]}")
    verdict = "identical" if not differ else f"{differ} DIFFER ({parts})"
    print(
        f"{name}: {files} files, {lines} lines: {verdict}; "
        f"summarize: before {old_s:.2f} s, now {new_s:.2f} s"
    )
    return differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="the earlier revision (default: merge-base with main)")
    parser.add_argument("--projects", default=",".join(PROJECTS))
    parser.add_argument("--root", type=Path, action="append", default=[])
    parser.add_argument("--show", type=int, default=5, help="differences printed per root")
    args = parser.parse_args()
    rev = args.rev or git(REPO, "merge-base", "HEAD", "main").strip()
    print(f"before: summary.py at {git(REPO, 'rev-parse', '--short', rev).strip()}; now: this tree")
    before = load_at(rev)
    projects = [p for p in args.projects.split(",") if p]
    differ = sum(
        compare(name, root, before, args.show) for name, root in roots(projects, args.root)
    )
    print("all identical" if not differ else f"{differ} files differ")
    if differ:
        raise SystemExit(1)


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"git failed: {exc.stderr}") from exc
