"""Diff application on noisy diffs made from small real commits of OCaml projects.

The commits are those of `corpus.py` (1-3 `.ml`/`.mli` files, 1-100 changed
lines) from the bundles in `../shared/corpora` (lwt, base, ocaml-containers);
commits that delete a file, or touch a file that is not UTF-8, are left out.
Each commit's own `git diff -U3` (without its `diff --git`/`index` lines, as a
model writes one) is disturbed in the ways models disturb diffs, one kind at a
time and all together; every tool then gets the same text. "Exact": every file
became the commit's new text. "Wrong": the tool said it succeeded but the files
are something else (a silent bad edit). The rest is refused. Deterministic per
seed: the noise of a diff depends only on the seed, the commit and the kind.

Peers: `git apply --recount`, `patch --fuzz=3`, and aider's udiff applier
(`find_diffs`, `normalize_hunk`, `do_replace` of `aider.coders.udiff_coder`),
run by `_aider_driver.py` in a venv of its own under `benchmarks/.cache/`
(never a dependency of the project).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.corpus import CACHE, PROJECTS, cases, clone, git
from ocaml_ai_ls.edits.apply import apply_file_edit
from ocaml_ai_ls.edits.parse import parse_answer

HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
AIDER_VENV = CACHE / "aider-venv"
AIDER_PYTHON = AIDER_VENV / "bin" / "python"
AIDER_INSTALL = f"python3 -m venv {AIDER_VENV} && {AIDER_PYTHON} -m pip install aider-chat"
DRIVER = Path(__file__).resolve().parent / "_aider_driver.py"

#: (path, text before or None for a new file, text after)
FileChange = tuple[str, str | None, str]


@dataclass(frozen=True)
class Change:
    """One commit: its files before and after, and its clean diff."""

    id: str
    project: str
    files: tuple[FileChange, ...]
    diff: str

    @property
    def before(self) -> dict[str, str | None]:
        return {p: b for p, b, _ in self.files}

    @property
    def after(self) -> dict[str, str]:
        return {p: a for p, _, a in self.files}


def _show(repo: Path, commit: str, path: str) -> str | None:
    data = subprocess.run(
        ["git", "-C", str(repo), "show", f"{commit}:{path}"], check=True, capture_output=True
    ).stdout
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _model_diff(diff: str) -> str:
    """`git diff` without the lines a model does not write (`diff --git`, `index`, modes)."""
    keep = []
    in_head = False
    for line in diff.split("\n"):
        if line.startswith("diff --git "):
            in_head = True
            continue
        if in_head and not line.startswith("--- "):
            continue
        in_head = False
        keep.append(line)
    return "\n".join(keep)


def changes(project: str, limit: int) -> list[Change]:
    """The project's newest small commits that a model could have written as a diff."""
    repo = clone(project)
    out = []
    for case in cases(project, limit, repo):
        if any(f.new is None for f in case.files):
            continue  # deleting a file is not an edit we ask a model for
        files: list[FileChange] = []
        for f in case.files:
            assert f.new is not None
            before = _show(repo, case.parent, f.old) if f.old is not None else None
            after = _show(repo, case.commit, f.new)
            if after is None or (f.old is not None and before is None):
                break
            files.append((f.new, before, after))
        else:
            paths = [p for p, _, _ in files]
            raw = git(repo, "diff", "--no-renames", "-U3", case.parent, case.commit, "--", *paths)
            out.append(
                Change(f"{project}:{case.commit[:10]}", project, tuple(files), _model_diff(raw))
            )
    return out


# -- noise ----------------------------------------------------------------------------


@dataclass
class _Section:
    """One file of a diff: its `---`/`+++` lines and its hunks (header first)."""

    head: list[str]
    hunks: list[list[str]] = field(default_factory=list)


def _split(diff: str) -> list[_Section]:
    sections: list[_Section] = []
    lines = diff.rstrip("\n").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            sections.append(_Section([line, lines[i + 1]]))
            i += 2
            continue
        if line.startswith("@@"):
            sections[-1].hunks.append([line])
        else:
            sections[-1].hunks[-1].append(line)
        i += 1
    return sections


def _join(sections: Sequence[_Section]) -> str:
    return (
        "\n".join(x for s in sections for x in [*s.head, *(y for h in s.hunks for y in h)]) + "\n"
    )


def _hunks(sections: Sequence[_Section]) -> list[list[str]]:
    return [h for s in sections for h in s.hunks]


Noise = Callable[[list[_Section], random.Random], list[_Section]]


def _header(old: int, olds: int, new: int, news: int, rest: str = "") -> str:
    return f"@@ -{old},{olds} +{new},{news} @@{rest}"


def _shift_header(line: str, by: int) -> str:
    m = HEADER.match(line)
    if not m or m.group(1) == "0":  # a new file's hunk has no old line to shift
        return line
    a, b, c, d, rest = m.groups()
    old = f"{max(1, int(a) + by)}" + (f",{b}" if b is not None else "")
    new = f"{max(1, int(c) + by)}" + (f",{d}" if d is not None else "")
    return f"@@ -{old} +{new} @@{rest}"


def _drift(rng: random.Random) -> int:
    return rng.choice([-1, 1]) * rng.randint(1, 30)


def shifted(sections: list[_Section], rng: random.Random) -> list[_Section]:
    """Every header's line numbers off by the same amount."""
    by = _drift(rng)
    for h in _hunks(sections):
        h[0] = _shift_header(h[0], by)
    return sections


def shifted_each(sections: list[_Section], rng: random.Random) -> list[_Section]:
    """Each header's line numbers off by its own amount."""
    for h in _hunks(sections):
        h[0] = _shift_header(h[0], _drift(rng))
    return sections


def no_numbers(sections: list[_Section], rng: random.Random) -> list[_Section]:
    for h in _hunks(sections):
        h[0] = "@@ @@"
    return sections


def wrong_counts(sections: list[_Section], rng: random.Random) -> list[_Section]:
    def bump(m: re.Match[str]) -> str:
        return f",{max(0, int(m.group(1)) + rng.choice([-2, -1, 1, 2]))}"

    for h in _hunks(sections):
        h[0] = re.sub(r",(\d+)", bump, h[0].split(" @@")[0] + " @@")
    return sections


def no_prefix(sections: list[_Section], rng: random.Random) -> list[_Section]:
    for s in sections:
        s.head = [re.sub(r"^(---|\+\+\+) [ab]/", r"\1 ", x) for x in s.head]
    return sections


def trailing_ws(sections: list[_Section], rng: random.Random) -> list[_Section]:
    """Trailing whitespace of context and `-` lines lost (a blank context line becomes empty).

    `+` lines keep theirs: they are what the model means to write.
    """
    for h in _hunks(sections):
        h[1:] = [x.rstrip() if x[:1] in (" ", "-") else x for x in h[1:]]
    return sections


def _reindent(line: str, more: bool) -> str:
    """A body line one space deeper (more) or shallower; blank and `\\` lines unchanged."""
    if line[:1] not in (" ", "-", "+") or not line[1:].strip():
        return line
    if more:
        return line[0] + " " + line[1:]
    return line[0] + line[2:] if line[1:2] == " " else line


def _can_dedent(lines: Sequence[str]) -> bool:
    body = [x for x in lines if x[:1] in (" ", "-", "+") and x[1:].strip()]
    return bool(body) and all(x[1:2] == " " for x in body)


def indent(sections: list[_Section], rng: random.Random) -> list[_Section]:
    """One hunk, every line of it, one space deeper or shallower."""
    hunks = _hunks(sections)
    h = rng.choice(hunks)
    more = not (_can_dedent(h[1:]) and rng.random() < 0.5)
    h[1:] = [_reindent(x, more) for x in h[1:]]
    return sections


def dedent(sections: list[_Section], rng: random.Random) -> list[_Section]:
    """One hunk's common indentation stripped (a fragment quoted out of its nesting)."""
    hunks = [h for h in _hunks(sections) if _can_dedent(h[1:])]
    if not hunks:
        return sections
    h = rng.choice(hunks)
    while _can_dedent(h[1:]):
        h[1:] = [_reindent(x, False) for x in h[1:]]
    return sections


def context_drift(sections: list[_Section], rng: random.Random) -> list[_Section]:
    """Context lines one space off while `-` and `+` lines are right, in every hunk."""
    more = rng.random() < 0.5
    for h in _hunks(sections):
        context = [x for x in h[1:] if x[:1] == " "]
        deeper = more or not _can_dedent(context)
        h[1:] = [_reindent(x, deeper) if x[:1] == " " else x for x in h[1:]]
    return sections


def crlf(sections: list[_Section], rng: random.Random) -> list[_Section]:
    for s in sections:
        s.head = [x + "\r" for x in s.head]
        s.hunks = [[x + "\r" for x in h] for h in s.hunks]
    return sections


def trimmed_context(sections: list[_Section], rng: random.Random) -> list[_Section]:
    """Context cut to one line before and after the changes; headers recounted."""
    for s in sections:
        out = []
        for h in s.hunks:
            body = h[1:]
            lead = 0
            while lead < len(body) and body[lead][:1] == " ":
                lead += 1
            trail = 0
            while trail < len(body) - lead and body[len(body) - 1 - trail][:1] == " ":
                trail += 1
            cut_lead, cut_trail = max(0, lead - 1), max(0, trail - 1)
            body = body[cut_lead : len(body) - cut_trail]
            m = HEADER.match(h[0])
            header = h[0]
            if m:
                olds = sum(1 for x in body if x[:1] in (" ", "-"))
                news = sum(1 for x in body if x[:1] in (" ", "+"))
                old, new = int(m.group(1)) + cut_lead, int(m.group(3)) + cut_lead
                header = _header(old, olds, new, news)
            out.append([header, *body])
        s.hunks = out
    return sections


def reordered(sections: list[_Section], rng: random.Random) -> list[_Section]:
    for s in sections:
        s.hunks = s.hunks[::-1]
    return sections


def mixed(sections: list[_Section], rng: random.Random) -> list[_Section]:
    """All of them at once: numbers drifted and miscounted, or gone; one disturbance of
    indentation (stacked, a whole-hunk shift and a context drift would cancel on the
    context and leave the `-`/`+` lines wrong: a diff of mis-indented new code)."""
    steps: list[Noise] = [trimmed_context]
    steps += [no_numbers] if rng.random() < 0.3 else [shifted_each, wrong_counts]
    steps += [rng.choice([indent, dedent, context_drift]), trailing_ws, no_prefix, reordered, crlf]
    for step in steps:
        sections = step(sections, rng)
    return sections


NOISES: dict[str, Noise] = {
    "clean": lambda s, r: s,
    "shifted": shifted,
    "shifted_each": shifted_each,
    "no_numbers": no_numbers,
    "wrong_counts": wrong_counts,
    "no_prefix": no_prefix,
    "trailing_ws": trailing_ws,
    "indent": indent,
    "dedent": dedent,
    "context_drift": context_drift,
    "crlf": crlf,
    "trimmed_context": trimmed_context,
    "reordered": reordered,
    "mixed": mixed,
}


def noisy(change: Change, kind: str, seed: int) -> str:
    rng = random.Random(f"{seed}/{change.id}/{kind}")
    return _join(NOISES[kind](_split(change.diff), rng))


# -- tools ----------------------------------------------------------------------------

#: The files' texts after a tool ran, or None when it reported a failure.
Outcome = dict[str, str] | None


def ours(change: Change, diff: str) -> Outcome:
    parsed = parse_answer(diff)
    if not parsed.edits:
        return None
    state = {p: t for p, t in change.before.items() if t is not None}
    for edit in parsed.edits:
        result = apply_file_edit(state.get(edit.path), edit)
        if result.text is None:
            return None
        state[edit.path] = result.text
    return state


def _external(cmd: list[str], change: Change, diff: str) -> Outcome:
    strip = 1 if re.search(r"^--- a/", diff, re.M) else 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for path, before in change.before.items():
            if before is not None:
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).write_bytes(before.encode())
        (root / "change.diff").write_bytes(diff.encode())
        done = subprocess.run(
            [*cmd[:-1], f"-p{strip}", cmd[-1], str(root / "change.diff")],
            cwd=tmp,
            capture_output=True,
            timeout=60,
        )
        if done.returncode != 0:
            return None
        return {
            p: (root / p).read_bytes().decode("utf-8", "replace")
            for p in change.before
            if (root / p).is_file()
        }


def git_apply(change: Change, diff: str) -> Outcome:
    return _external(["git", "apply", "--recount", "--unsafe-paths", "-v"], change, diff)


def patch_fuzz(change: Change, diff: str) -> Outcome:
    return _external(
        ["patch", "--batch", "--fuzz=3", "--no-backup-if-mismatch", "-s", "-i"], change, diff
    )


def aider_batch(jobs: Sequence[tuple[Change, str]]) -> list[Outcome] | None:
    """Aider's applier on every job in one process of its venv; None if it is not installed."""
    if not AIDER_PYTHON.exists():
        return None
    payload = [{"files": change.before, "diff": diff} for change, diff in jobs]
    done = subprocess.run(
        [str(AIDER_PYTHON), str(DRIVER)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=True,
    )
    results: list[Outcome] = json.loads(done.stdout)
    return results


# -- the table ------------------------------------------------------------------------

EXACT, WRONG, REFUSED = 0, 1, 2


def verdict(change: Change, got: Outcome) -> int:
    if got is None:
        return REFUSED
    return EXACT if got == change.after else WRONG


def _cells(rows: Sequence[int]) -> str:
    n = len(rows) or 1
    exact = 100 * sum(1 for r in rows if r == EXACT) / n
    wrong = 100 * sum(1 for r in rows if r == WRONG) / n
    return f"{exact:>14.1f}% {wrong:>5.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=25, help="commits per project (newest)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=sorted(NOISES), help="one kind of noise")
    parser.add_argument("--projects", nargs="+", choices=PROJECTS, default=list(PROJECTS))
    parser.add_argument("--dump", type=Path, help="write the noisy diffs here")
    parser.add_argument("--misses", action="store_true", help="list our non-exact diffs")
    args = parser.parse_args()

    every = [c for p in args.projects for c in changes(p, args.limit)]
    kinds = [args.only] if args.only else list(NOISES)
    jobs = [(c, k, noisy(c, k, args.seed)) for k in kinds for c in every]
    if args.dump:
        for c, k, diff in jobs:
            out = args.dump / k / (c.id.replace(":", "_") + ".diff")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(diff.encode())

    tools: dict[str, Callable[[Change, str], Outcome]] = {
        "git apply --recount": git_apply,
        "patch --fuzz=3": patch_fuzz,
    }
    verdicts: dict[str, list[int]] = {}
    for name, run in tools.items():
        verdicts[name] = [verdict(c, run(c, d)) for c, _, d in jobs]
    aider = aider_batch([(c, d) for c, _, d in jobs])
    if aider is not None:
        verdicts["aider udiff"] = [
            verdict(c, got) for (c, _, _), got in zip(jobs, aider, strict=True)
        ]
    ms: list[float] = []
    mine = []
    for c, k, d in jobs:
        t0 = time.perf_counter()
        got = ours(c, d)
        ms.append((time.perf_counter() - t0) * 1000)
        mine.append(verdict(c, got))
        if args.misses and mine[-1] != EXACT:
            print(f"ours {'wrong' if mine[-1] == WRONG else 'refused'}: {k} {c.id}")
    verdicts["ours"] = mine

    per_project = {p: sum(1 for c in every if c.project == p) for p in args.projects}
    print(
        f"{len(every)} commits ("
        + ", ".join(f"{p} {n}" for p, n in per_project.items())
        + f"), {len(kinds)} kinds of noise, {len(jobs)} diffs; seed {args.seed}"
    )
    if aider is None:
        print(f"aider's applier: not installed ({AIDER_INSTALL})")
    names = list(verdicts)
    print(f"{'noise':<22}{'changed':>8}" + "".join(f"{t:>22}" for t in names))
    print(f"{'':<30}" + "".join(f"{'exact  wrong':>22}" for _ in names))
    for kind in kinds:
        idx = [i for i, (_, k, _) in enumerate(jobs) if k == kind]
        changed = sum(1 for i in idx if jobs[i][2] != jobs[i][0].diff)
        row = "".join(f"{_cells([verdicts[t][i] for i in idx]):>22}" for t in names)
        print(f"{kind:<22}{changed:>8}{row}")
    for project in args.projects:
        idx = [i for i, (c, _, _) in enumerate(jobs) if c.project == project]
        row = "".join(f"{_cells([verdicts[t][i] for i in idx]):>22}" for t in names)
        print(f"{'all ' + project:<22}{len(idx):>8}{row}")
    row = "".join(f"{_cells(verdicts[t]):>22}" for t in names)
    print(f"{'all':<22}{len(jobs):>8}{row}")
    counts = ", ".join(f"{t} {verdicts[t].count(EXACT)}/{verdicts[t].count(WRONG)}" for t in names)
    print(f"exact/wrong counts: {counts}")
    p95 = statistics.quantiles(ms, n=20)[-1]
    print(f"ours: median {statistics.median(ms):.2f} ms, p95 {p95:.2f} ms per diff (parse + apply)")


if __name__ == "__main__":
    main()
