"""Aider's udiff applier on diffs read as JSON on stdin; run in the benchmark-only venv.

Input: a JSON list of `{"files": {path: text}, "diff": str}`. Output: a JSON
list, one entry per case: the text of every file the case names (and of any it
created) after aider applied the diff the way `UnifiedDiffCoder.apply_edits`
does, or null when aider reported an error. Only `find_diffs`,
`normalize_hunk` and `do_replace` of `aider.coders.udiff_coder` are used.
Stdlib and aider only: this file never imports the project.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from aider.coders.udiff_coder import (  # type: ignore[import-not-found]
    do_replace,
    find_diffs,
    normalize_hunk,
)


def _edits(diff: str) -> list[tuple[Any, list[str]]]:
    """`get_edits`: hunks in a ```diff fence, a missing path taken from the previous one."""
    fenced = "```diff\n" + diff + ("" if diff.endswith("\n") else "\n") + "```\n"
    edits, last = [], None
    for path, hunk in find_diffs(fenced):
        if path:
            last = path
        else:
            path = last
        edits.append((path, hunk))
    return edits


def _apply(root: Path, diff: str) -> bool:
    """`apply_edits` without the coder: False where aider would report an error."""
    seen: set[str] = set()
    unique = []
    for path, hunk in _edits(diff):
        hunk = normalize_hunk(hunk)
        if not hunk:
            continue
        key = f"{path}\n" + "".join(hunk)
        if key in seen:
            continue
        seen.add(key)
        unique.append((path, hunk))
    ok = True
    for path, hunk in unique:
        full = (root / path).resolve()
        if not full.is_relative_to(root):
            ok = False
            continue
        content = full.read_text(encoding="utf-8") if full.is_file() else None
        try:
            content = do_replace(full, content, hunk)
        except Exception:  # SearchTextNotUnique, or a crash on odd input: an error either way
            ok = False
            continue
        if not content:
            ok = False
            continue
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text(content, encoding="utf-8")
    return ok


def run(case: dict[str, Any]) -> dict[str, str] | None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp).resolve()
        files: dict[str, str | None] = case["files"]
        for path, text in files.items():
            if text is not None:
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).write_text(text, encoding="utf-8")
        try:
            if not _apply(root, case["diff"]):
                return None
        except Exception:
            return None
        return {p: (root / p).read_text(encoding="utf-8") for p in files if (root / p).is_file()}


def main() -> None:
    cases = json.load(sys.stdin)
    json.dump([run(c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
