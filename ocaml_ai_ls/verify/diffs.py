"""A check request's `diff` → the new texts of the files it changes, against the disk.

The batch service (`ces`) takes either text (a unified diff, or anything the
model-answer parser accepts: SEARCH/REPLACE blocks, whole-file blocks) or a
list of file edits `[{"path": rel, "text": new_or_null}]` / `[{"path": rel,
"diff": text}]`. The same parser, applier and path rules as the editor's
pipeline are used, so a diff checked here is a diff the server would apply.

A diff that cannot be turned into files is `BadDiff` (a client error: HTTP 400,
an `error` line from `ces check`), never a verification status: the compiler
never saw it, and the reason (with the closest lines for a hunk that did not
apply) is what a client needs to repair it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..documents import DocumentStore
from ..edits.apply import apply_file_edit
from ..edits.parse import parse_answer
from ..workspace import PathRefused, Workspace

#: Keys an item of a list-of-files diff may have.
_ITEM_KEYS = frozenset({"path", "text", "diff"})


class BadDiff(ValueError):
    """A request's diff that names no checkable change; the message says why."""


def files_to_check(diff: object, root: Path) -> dict[str, str | None]:
    """Relative path → new text (None: deleted) of every file `diff` changes.

    `diff` is the request's JSON value: a string, or a list of file edits.
    Raises BadDiff with the reason when it is malformed, refers to a path
    outside the project, or does not apply to the files under `root`.
    """
    ws = Workspace(root, DocumentStore())
    files: dict[str, str | None] = {}
    if isinstance(diff, str):
        _apply_text(diff, ws, files, default=None)
    elif isinstance(diff, list):
        _apply_items(diff, ws, files)
    else:
        raise BadDiff(
            "diff must be a string (a unified diff) or a list of "
            f'{{"path", "text"}} objects, not {_json_type(diff)}'
        )
    return files


def answer_files(
    answer: str, root: Path, before: Mapping[str, str | None], target: str | None
) -> dict[str, str | None]:
    """The files of `before` (overrides of the files under `root`: the "before" state)
    with a model's answer applied, as the pipeline would: every file the answer names
    (a hunk without a path is for `target`, the request's file), no deletion. Raises
    BadDiff when the answer gives no usable edit or does not apply."""
    ws = Workspace(root, DocumentStore())
    files = dict(before)
    _apply_text(answer, ws, files, default=target, only=False)
    return files


def _apply_items(items: list[object], ws: Workspace, files: dict[str, str | None]) -> None:
    if not items:
        raise BadDiff("the diff lists no files")
    seen: set[str] = set()
    for n, item in enumerate(items, 1):
        where = f"diff item {n}"
        if not isinstance(item, Mapping):
            raise BadDiff(f"{where} must be an object {{path, text}}, not {_json_type(item)}")
        extra = set(item) - _ITEM_KEYS
        if extra:
            raise BadDiff(f"{where} has unknown keys: {', '.join(sorted(map(str, extra)))}")
        written = item.get("path")
        if not isinstance(written, str) or not written:
            raise BadDiff(f"{where} needs a non-empty string path")
        rel = _rel(ws, written)
        if rel in seen:
            raise BadDiff(f"{where}: {rel} is listed twice")
        seen.add(rel)
        if ("text" in item) == ("diff" in item):
            raise BadDiff(f"{where} ({rel}) needs exactly one of text (null deletes) and diff")
        if "diff" in item:
            text = item["diff"]
            if not isinstance(text, str):
                raise BadDiff(f"{where} ({rel}): diff must be a string, not {_json_type(text)}")
            _apply_text(text, ws, files, default=rel)
            continue
        new = item["text"]
        if new is None:
            if _current(ws, files, rel) is None:
                raise BadDiff(f"{where}: cannot delete {rel}: there is no such file")
            files[rel] = None
        elif isinstance(new, str):
            files[rel] = new
        else:
            raise BadDiff(f"{where} ({rel}): text must be a string or null, not {_json_type(new)}")


def _apply_text(
    text: str,
    ws: Workspace,
    files: dict[str, str | None],
    default: str | None,
    only: bool = True,
) -> None:
    """Apply one diff text; `default` is the path of hunks that name none and, when
    `only`, the only path it may name (an item's path); without `only`, a model's
    answer: no deletions, as the pipeline reads one."""
    if not text.strip():
        raise BadDiff("the diff is empty")
    rest, deleted = _split_deletions(text) if only else (text, [])
    for written in deleted:
        rel = _rel(ws, written)
        _only(rel, default)
        if _current(ws, files, rel) is None:
            raise BadDiff(f"cannot delete {rel}: there is no such file")
        files[rel] = None
    if deleted and not rest.strip():
        return
    parsed = parse_answer(rest)
    if parsed.problems or not parsed.usable:
        raise BadDiff("; ".join(parsed.problems) or parsed.reason)
    for edit in parsed.edits:
        if not edit.path and default is None:
            raise BadDiff("a hunk names no file: start it with '--- a/PATH' and '+++ b/PATH' lines")
        rel = _rel(ws, edit.path) if edit.path else (default or "")
        if only:
            _only(rel, default)
        result = apply_file_edit(_current(ws, files, rel), edit)
        if result.text is None:
            failure = result.failures[0] if result.failures else None
            why = failure.reason if failure else "it did not apply"
            hint = f" ({failure.closest})" if failure and failure.closest else ""
            raise BadDiff(f"{rel}: {why}{hint}")
        files[rel] = result.text


def _split_deletions(text: str) -> tuple[str, list[str]]:
    """The diff without its file deletions (`+++ /dev/null`), and the deleted paths.

    The answer parser refuses deletions (a model must not delete files); a
    diff sent to be checked may make them.
    """
    lines = text.splitlines(keepends=True)
    kept: list[str] = []
    deleted: list[str] = []
    i = 0
    while i < len(lines):
        if _is_header(lines, i) and _header_path(lines[i + 1]) == "/dev/null":
            old = _header_path(lines[i])
            deleted.append(old[2:] if old.startswith("a/") else old)
            i += 2
            while i < len(lines) and lines[i].startswith(("@@", "-", "\\")):
                if _is_header(lines, i):  # the next file's `---`, not a removed `-- x` line
                    break
                i += 1
            continue
        kept.append(lines[i])
        i += 1
    return "".join(kept), deleted


def _is_header(lines: list[str], i: int) -> bool:
    return lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")


def _header_path(line: str) -> str:
    """The path of a `--- PATH` or `+++ PATH` line (a tab and a timestamp may follow)."""
    return line[4:].rstrip("\r\n").split("\t")[0].strip().strip("\"'")


def _rel(ws: Workspace, written: str) -> str:
    """The relative path `written` names, by the workspace's rules (PathRefused → BadDiff)."""
    try:
        path = ws.resolve(written, ws.root)
    except PathRefused as exc:
        raise BadDiff(f"refused: {exc}") from None
    return path.relative_to(ws.root).as_posix()


def _only(rel: str, default: str | None) -> None:
    if default is not None and rel != default:
        raise BadDiff(f"the diff for {default} also changes {rel}")


def _current(ws: Workspace, files: Mapping[str, str | None], rel: str) -> str | None:
    """The file's text after the edits so far (None: it does not exist)."""
    if rel in files:
        return files[rel]
    path = ws.root / rel
    found = ws.read(path)
    if found is None and path.exists():
        raise BadDiff(f"cannot read {rel} (not UTF-8, or larger than 2 MB)")
    return found.text if found is not None else None


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)
