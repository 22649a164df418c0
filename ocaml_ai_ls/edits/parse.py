"""Model text → file edits, for answers as models really write them.

Accepts, anywhere in a chatty answer: unified diffs (with or without `a/`
`b/`, with wrong or missing `@@` numbers), SEARCH/REPLACE blocks after their
path, and whole-file fenced blocks after a path. Never raises: what is not
usable is reported in `ParseResult.problems`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .model import FileEdit, Hunk, ParseResult

_SEARCH = re.compile(r"^\s*<{5,9}\s*SEARCH\s*$", re.I)
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9}\s*REPLACE\s*$", re.I)
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")
_HUNK = re.compile(r"^@@+\s*(?:-(\d+)(?:,(\d+))?(?:\s+\+(\d+)(?:,(\d+))?)?)?.*$")
_PATH_PREFIX = re.compile(r"^(?:#+\s*|(?:file|path|filename)\s*:\s*)", re.I)
_WHOLE_FILE = re.compile(r"(\.mli?|\.mll|\.mly|\.opam|(^|/)dune|(^|/)dune-project)$")
MAX_ANSWER_CHARS = 2_000_000


@dataclass
class _File:
    path: str
    hunks: list[Hunk] = field(default_factory=list)
    content: str | None = None
    create: bool = False


def _clean_path(line: str) -> str:
    """A path from a line like `**lib/a.ml**`, `File: lib/a.ml:`, `` `lib/a.ml` ``."""
    text = line.strip()
    text = _PATH_PREFIX.sub("", text).strip()
    text = text.strip("*`'\" ").rstrip(":").strip("*`'\" ")
    text = text.replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return text


def _looks_like_path(text: str) -> bool:
    if not text or " " in text or "\t" in text or len(text) > 255:
        return False
    return "." in text or "/" in text or text in ("dune", "dune-project")


def _diff_path(raw: str) -> str:
    text = raw.split("\t")[0].strip().strip("\"'")
    return text.replace("\\", "/")


def _strip_ab(old: str, new: str) -> tuple[str, str]:
    if old.startswith("a/") and new.startswith("b/"):
        return old[2:], new[2:]
    if old == "/dev/null" and new.startswith(("a/", "b/")):
        return old, new[2:]
    if new == "/dev/null" and old.startswith(("a/", "b/")):
        return old[2:], new
    return old, new


class _Parser:
    def __init__(self, text: str) -> None:
        self.lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self.files: dict[str, _File] = {}
        self.order: list[str] = []
        self.problems: list[str] = []
        self.last_path: str | None = None

    def file(self, path: str) -> _File:
        if path not in self.files:
            self.files[path] = _File(path)
            self.order.append(path)
        return self.files[path]

    def add_hunk(self, path: str, hunk: Hunk) -> None:
        target = self.file(path)
        if target.content is not None:
            self.problems.append(f"{path or 'the file'} has both a whole-file block and hunks")
            return
        target.hunks.append(hunk)
        self.last_path = path

    def add_content(self, path: str, content: str, create: bool) -> None:
        target = self.file(path)
        if target.hunks or target.content is not None:
            self.problems.append(f"{path} has more than one edit of different kinds")
            return
        target.content, target.create = content, create
        self.last_path = path

    def path_above(self, index: int) -> str | None:
        """The path on the nearest non-blank line above, skipping fence openers."""
        i = index - 1
        while i >= 0:
            line = self.lines[i]
            if not line.strip() or _FENCE.match(line):
                i -= 1
                continue
            candidate = _clean_path(line)
            return candidate if _looks_like_path(candidate) else None
        return None

    def run(self) -> ParseResult:
        i = 0
        n = len(self.lines)
        while i < n:
            line = self.lines[i]
            if _SEARCH.match(line):
                i = self.search_replace(i)
            elif line.startswith("--- ") and i + 1 < n and self.lines[i + 1].startswith("+++ "):
                i = self.diff_file(i)
            elif _HUNK.match(line) and line.startswith("@@"):
                path = self.last_path if self.last_path is not None else ""
                i = self.hunk(i, path)
            elif (fence := _FENCE.match(line)) is not None:
                i = self.fenced(i, fence)
            else:
                i += 1
        edits = []
        for path in self.order:
            f = self.files[path]
            if f.content is None and not f.hunks:
                continue
            edits.append(FileEdit(path, tuple(f.hunks), f.content, f.create))
        if not edits and not self.problems:
            self.problems.append(
                "no edit found in the answer (expected SEARCH/REPLACE blocks or a unified diff)"
            )
        return ParseResult(tuple(edits), tuple(self.problems))

    # -- SEARCH/REPLACE ----------------------------------------------------------

    def search_replace(self, start: int) -> int:
        found = self.path_above(start)
        path = found if found is not None else (self.last_path or "")
        search: list[str] = []
        replace: list[str] = []
        i = start + 1
        n = len(self.lines)
        while i < n and not _DIVIDER.match(self.lines[i]):
            if _SEARCH.match(self.lines[i]) or _REPLACE.match(self.lines[i]):
                break
            search.append(self.lines[i])
            i += 1
        if i >= n or not _DIVIDER.match(self.lines[i]):
            self.problems.append(f"a SEARCH/REPLACE block for {path or 'the file'} is not closed")
            return i
        i += 1
        while i < n and not _REPLACE.match(self.lines[i]):
            if _SEARCH.match(self.lines[i]):
                break
            replace.append(self.lines[i])
            i += 1
        if i >= n or not _REPLACE.match(self.lines[i]):
            self.problems.append(f"a SEARCH/REPLACE block for {path or 'the file'} is not closed")
            return i
        self.add_hunk(path, Hunk(tuple(search), tuple(replace)))
        return i + 1

    # -- unified diffs -------------------------------------------------------------

    def diff_file(self, start: int) -> int:
        old = _diff_path(self.lines[start][4:])
        new = _diff_path(self.lines[start + 1][4:])
        old, new = _strip_ab(old, new)
        i = start + 2
        if new == "/dev/null":
            self.problems.append(f"deleting files is not supported ({old})")
            while i < len(self.lines) and (
                self.lines[i].startswith(("@@", " ", "-", "+", "\\")) or not self.lines[i]
            ):
                if self.lines[i].startswith("--- "):
                    break
                i += 1
            return i
        path = new
        if old == "/dev/null":
            added: list[str] = []
            while (
                i < len(self.lines)
                and _HUNK.match(self.lines[i])
                and self.lines[i].startswith("@@")
            ):
                i += 1
                while i < len(self.lines):
                    line = self.lines[i]
                    if line.startswith("+") and not line.startswith("+++ "):
                        added.append(line[1:])
                    elif line.startswith("\\"):
                        pass
                    else:
                        break
                    i += 1
            self.add_content(path, "\n".join(added) + "\n" if added else "", True)
            return i
        self.last_path = path
        self.file(path)
        while i < len(self.lines) and self.lines[i].startswith("@@"):
            i = self.hunk(i, path)
        return i

    def hunk(self, start: int, path: str) -> int:
        match = _HUNK.match(self.lines[start])
        hint = int(match.group(1)) - 1 if match and match.group(1) else None
        old: list[str] = []
        new: list[str] = []
        marks: list[str] = []
        i = start + 1
        n = len(self.lines)
        while i < n:
            line = self.lines[i]
            if line.startswith("@@") or _FENCE.match(line) or line.startswith("diff --git"):
                break
            if line.startswith("--- ") and i + 1 < n and self.lines[i + 1].startswith("+++ "):
                break
            if line.startswith("\\"):
                i += 1
                continue
            if line == "":
                old.append("")
                new.append("")
                marks.append(" ")
            elif line[0] == " ":
                old.append(line[1:])
                new.append(line[1:])
                marks.append(" ")
            elif line[0] == "-":
                old.append(line[1:])
                marks.append("-")
            elif line[0] == "+":
                new.append(line[1:])
                marks.append("+")
            else:
                break
            i += 1
        if i == n and n > 1 and self.lines[-1] == "" and old and new and marks[-1] == " ":
            # the empty "line" after the answer's last newline is no line at all
            old.pop()
            new.pop()
            marks.pop()
            i -= 1
        counts = _counts(match)
        # blank lines at the end may be context whose space was stripped, or separators
        # before prose or the next file: not evidence either way, dropped
        blank = 0  # empty lines (not even a context line's space) ending the hunk
        while (
            blank < min(len(old), len(new))
            and old[-1 - blank] == new[-1 - blank] == self.lines[i - 1 - blank] == ""
        ):
            blank += 1
        counted = counts in ((len(old), len(new)), (len(old) - blank, len(new) - blank))
        for _ in range(blank):
            old.pop()
            new.pop()
            marks.pop()
            i -= 1
        if old or new:
            line_hint = hint if hint is not None and hint >= 0 else None
            anchor = _anchor("".join(marks), blank)
            hunk = Hunk(tuple(old), tuple(new), line_hint, "".join(marks), counted, anchor)
            self.add_hunk(path, hunk)
        return max(i, start + 1)

    # -- fenced blocks -------------------------------------------------------------

    def fenced(self, start: int, fence: re.Match[str]) -> int:
        marker, info = fence.group(1), fence.group(2).strip()
        end = start + 1
        while end < len(self.lines) and not self.lines[end].strip().startswith(marker[:3]):
            end += 1
        body = self.lines[start + 1 : end]
        has_markers = any(_SEARCH.match(b) or b.startswith(("--- ", "+++ ", "@@")) for b in body)
        if has_markers:
            return start + 1  # a wrapper: parse what is inside
        path = self._info_path(info) or self.path_above(start)
        if path and _WHOLE_FILE.search(path) and end < len(self.lines):
            self.add_content(path, "\n".join(body) + "\n", False)
        return end + 1

    @staticmethod
    def _info_path(info: str) -> str | None:
        title = re.search(r"title=[\"']?([^\"'\s]+)", info)
        if title:
            return _clean_path(title.group(1))
        for word in info.split():
            candidate = _clean_path(word)
            if "/" in candidate or (_WHOLE_FILE.search(candidate) and "." in candidate):
                return candidate
        return None


def _anchor(marks: str, dropped: int) -> str:
    """Where a unified diff's hunk must sit by its context: "end" when it has fewer
    context lines after its changes than before them, "start" when fewer before
    than after (a diff writes fewer only at the file's ends, as GNU patch reads
    it), else "". The `dropped` blank lines of its end count as context here: it
    must hold whether they were context or not.
    """
    if not marks.strip():
        return ""
    lead = len(marks) - len(marks.lstrip(" "))
    trail = len(marks) - len(marks.rstrip(" "))
    if trail + dropped < lead:
        return "end"
    if lead < trail:
        return "start"
    return ""


def _counts(header: re.Match[str] | None) -> tuple[int, int] | None:
    """The old and new line counts an `@@ -a,b +c,d @@` header gives (1 when left out)."""
    if header is None or header.group(1) is None or header.group(3) is None:
        return None
    old, new = header.group(2), header.group(4)
    return (1 if old is None else int(old)), (1 if new is None else int(new))


def parse_answer(text: str) -> ParseResult:
    """The file edits in a model's answer; never raises."""
    try:
        if len(text) > MAX_ANSWER_CHARS:
            return ParseResult(problems=("the answer is too long to be a small edit",))
        return _Parser(text).run()
    except Exception as exc:  # a parser bug must not take the server down
        return ParseResult(problems=(f"could not read the answer ({type(exc).__name__})",))
