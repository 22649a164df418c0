"""Diff application on noisy diffs made from real edits of OCaml files.

Real edits: every `.ml`/`.mli` file that changed a little (1-6 hunks, at most
100 changed lines) between successive releases of Reason, an OCaml code base
whose sources its npm package `@esy-ocaml/reason` ships. The releases are
fetched with `npm pack` into a cache (nothing of them is committed). Each real
diff is disturbed the ways models disturb diffs; the table shows, per kind of
noise, how often each tool produced exactly the intended file ("exact") and
how often it changed the file into something else ("wrong": a silent bad
edit), for ours, `git apply --recount` and `patch --fuzz=3`.
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import random
import re
import statistics
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ocaml_ai_ls.edits.apply import apply_file_edit
from ocaml_ai_ls.edits.parse import parse_answer
from ocaml_ai_ls.edits.workspace_edit import FileChange, unified_diff

PACKAGE = "@esy-ocaml/reason"
VERSIONS = ("3.3.3", "3.5.0", "3.5.2", "3.6.0", "3.7.0")
CACHE = Path(__file__).resolve().parent / ".cache"
HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")


@dataclass(frozen=True)
class Pair:
    id: str
    path: str
    before: str
    after: str


def fetch(version: str) -> Path:
    """The unpacked release, downloaded once with `npm pack`."""
    root = CACHE / version
    if root.exists():
        return root / "package"
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["npm", "pack", f"{PACKAGE}@{version}", "--pack-destination", str(CACHE)],
        check=True,
        capture_output=True,
    )
    [tgz] = CACHE.glob(f"*reason-{version}.tgz")
    with tarfile.open(tgz) as tar:
        tar.extractall(root, filter="data")
    tgz.unlink()
    return root / "package"


def sources(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in root.rglob("*"):
        if path.suffix in (".ml", ".mli") and path.is_file():
            try:
                out[path.relative_to(root).as_posix()] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
    return out


def real_pairs() -> list[Pair]:
    """Small real changes between successive releases."""
    pairs: list[Pair] = []
    for old_v, new_v in itertools.pairwise(VERSIONS):
        old, new = sources(fetch(old_v)), sources(fetch(new_v))
        for path in sorted(old.keys() & new.keys()):
            a, b = old[path], new[path]
            if a == b or a.count("\n") > 3000 or a.split() == b.split():
                continue
            diff = list(difflib.unified_diff(a.split("\n"), b.split("\n"), lineterm=""))
            changed = sum(1 for x in diff if x[:1] in "+-" and not x.startswith(("+++", "---")))
            hunks = sum(1 for x in diff if x.startswith("@@"))
            if changed <= 100 and 1 <= hunks <= 6:
                pairs.append(Pair(f"{old_v}..{new_v}:{path}", path, a, b))
    return pairs


# -- noise --------------------------------------------------------------------------


def clean_diff(pair: Pair) -> str:
    """The change as `git diff` prints it (our diff writer makes the same format)."""
    path = Path(pair.path)
    return unified_diff([FileChange(path, pair.path, "", pair.before, pair.after)])


def _split(diff: str) -> tuple[list[str], list[list[str]]]:
    lines = diff.rstrip("\n").split("\n")
    head, hunks = lines[:2], []
    for line in lines[2:]:
        if line.startswith("@@"):
            hunks.append([line])
        else:
            hunks[-1].append(line)
    return head, hunks


def _join(head: list[str], hunks: list[list[str]]) -> str:
    return "\n".join(head + [x for h in hunks for x in h]) + "\n"


def _shift_header(line: str, by: int) -> str:
    m = HEADER.match(line)
    if not m:
        return line
    a, b, c, d, rest = m.groups()
    old = f"{max(1, int(a) + by)}" + (f",{b}" if b is not None else "")
    new = f"{max(1, int(c) + by)}" + (f",{d}" if d is not None else "")
    return f"@@ -{old} +{new} @@{rest}"


def shifted(diff: str, rng: random.Random) -> str:
    by = rng.choice([-1, 1]) * rng.randint(1, 30)
    head, hunks = _split(diff)
    return _join(head, [[_shift_header(h[0], by), *h[1:]] for h in hunks])


def shifted_each(diff: str, rng: random.Random) -> str:
    head, hunks = _split(diff)
    return _join(
        head,
        [[_shift_header(h[0], rng.choice([-1, 1]) * rng.randint(1, 30)), *h[1:]] for h in hunks],
    )


def no_counts(diff: str, rng: random.Random) -> str:
    head, hunks = _split(diff)
    return _join(head, [["@@ @@", *h[1:]] for h in hunks])


def wrong_counts(diff: str, rng: random.Random) -> str:
    def bump(m: re.Match[str]) -> str:
        return f",{max(0, int(m.group(1)) + rng.choice([-2, -1, 1, 2]))}"

    head, hunks = _split(diff)
    return _join(head, [[re.sub(r",(\d+)", bump, h[0]), *h[1:]] for h in hunks])


def trailing_ws(diff: str, rng: random.Random) -> str:
    return "\n".join(x.rstrip() for x in diff.split("\n"))


def indent(diff: str, rng: random.Random) -> str:
    head, hunks = _split(diff)
    k = rng.randrange(len(hunks))
    body = hunks[k][1:]
    if (
        all(len(x) > 1 and x[1] == " " for x in body if x.strip()[1:].strip())
        and rng.random() < 0.5
    ):
        hunks[k] = [hunks[k][0]] + [x[0] + x[2:] if len(x) > 1 and x[1] == " " else x for x in body]
    else:
        hunks[k] = [hunks[k][0]] + [x[0] + " " + x[1:] if x[1:].strip() else x for x in body]
    return _join(head, hunks)


def crlf(diff: str, rng: random.Random) -> str:
    return diff.replace("\n", "\r\n")


def no_prefix(diff: str, rng: random.Random) -> str:
    lines = diff.split("\n")
    lines[0] = lines[0].replace("--- a/", "--- ", 1)
    lines[1] = lines[1].replace("+++ b/", "+++ ", 1)
    return "\n".join(lines)


def trimmed_context(diff: str, rng: random.Random) -> str:
    head, hunks = _split(diff)
    out = []
    for h in hunks:
        body = h[1:]
        lead = 0
        while lead < len(body) and body[lead][:1] == " ":
            lead += 1
        trail = 0
        while trail < len(body) - lead and body[len(body) - 1 - trail][:1] == " ":
            trail += 1
        cut_lead, cut_trail = max(0, lead - 1), max(0, trail - 1)
        new_body = body[cut_lead : len(body) - cut_trail]
        m = HEADER.match(h[0])
        header = h[0]
        if m:
            a, c = int(m.group(1)) + cut_lead, int(m.group(3)) + cut_lead
            olds = sum(1 for x in new_body if x[:1] in " -")
            news = sum(1 for x in new_body if x[:1] in " +")
            header = f"@@ -{a},{olds} +{c},{news} @@"
        out.append([header, *new_body])
    return _join(head, out)


def reordered(diff: str, rng: random.Random) -> str:
    head, hunks = _split(diff)
    return _join(head, hunks[::-1])


def mixed(diff: str, rng: random.Random) -> str:
    for noise in (shifted_each, trailing_ws, no_prefix, reordered):
        diff = noise(diff, rng)
    return diff


NOISES: dict[str, Callable[[str, random.Random], str]] = {
    "clean": lambda d, r: d,
    "shifted": shifted,
    "shifted_each": shifted_each,
    "no_counts": no_counts,
    "wrong_counts": wrong_counts,
    "trailing_ws": trailing_ws,
    "indent": indent,
    "crlf": crlf,
    "no_prefix": no_prefix,
    "trimmed_context": trimmed_context,
    "reordered": reordered,
    "mixed": mixed,
}


# -- tools ----------------------------------------------------------------------------


def ours(pair: Pair, diff: str) -> str | None:
    parsed = parse_answer(diff)
    if not parsed.edits:
        return None
    return apply_file_edit(pair.before, parsed.edits[0]).text


def _external(cmd: list[str], pair: Pair, diff: str, strip: int) -> str | None:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / pair.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(pair.before.encode())
        patch = Path(tmp) / "change.diff"
        patch.write_bytes(diff.encode())
        done = subprocess.run(
            [*cmd, str(patch), f"-p{strip}"], cwd=tmp, capture_output=True, timeout=30
        )
        if done.returncode != 0:
            return None
        return target.read_bytes().decode("utf-8", "replace")


def git_apply(pair: Pair, diff: str) -> str | None:
    strip = 0 if "--- a/" not in diff else 1
    return _external(["git", "apply", "--recount", "--unsafe-paths"], pair, diff, strip)


def patch_fuzz(pair: Pair, diff: str) -> str | None:
    strip = 0 if "--- a/" not in diff else 1
    return _external(
        ["patch", "--batch", "--fuzz=3", "--no-backup-if-mismatch", "-s", "-i"], pair, diff, strip
    )


TOOLS: dict[str, Callable[[Pair, str], str | None]] = {
    "ours": ours,
    "git apply --recount": git_apply,
    "patch --fuzz=3": patch_fuzz,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=sorted(NOISES), help="one kind of noise")
    parser.add_argument("--dump", type=Path, help="write the noisy diffs here")
    args = parser.parse_args()
    pairs = real_pairs()
    noises = {args.only: NOISES[args.only]} if args.only else NOISES
    counts: dict[tuple[str, str], list[int]] = {}
    ours_ms: list[float] = []
    total = 0
    for name, noise in noises.items():
        for pair in pairs:
            rng = random.Random(f"{pair.id}/{name}")
            diff = noise(clean_diff(pair), rng)
            total += 1
            if args.dump:
                out = args.dump / name / (re.sub(r"[^\w.-]+", "_", pair.id) + ".diff")
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(diff.encode())
            for tool, run in TOOLS.items():
                t0 = time.perf_counter()
                got = run(pair, diff)
                if tool == "ours":
                    ours_ms.append((time.perf_counter() - t0) * 1000)
                cell = counts.setdefault((name, tool), [0, 0, 0])
                cell[0 if got == pair.after else 1 if got is not None else 2] += 1
    tools = list(TOOLS)
    print(f"{len(pairs)} real edits from {PACKAGE} {', '.join(VERSIONS)}; {total} noisy diffs")
    print(f"{'noise':<16}" + "".join(f"{t:>28}" for t in tools))
    print(f"{'':<16}" + "".join(f"{'exact   wrong':>28}" for _ in tools))
    for name in noises:
        cells = []
        for tool in tools:
            exact, wrong, refused = counts[(name, tool)]
            n = exact + wrong + refused
            cells.append(f"{100 * exact / n:>21.1f}% {100 * wrong / n:>5.1f}%")
        print(f"{name:<16}" + "".join(cells))
    cells = []
    for tool in tools:
        exact = sum(counts[(n, tool)][0] for n in noises)
        wrong = sum(counts[(n, tool)][1] for n in noises)
        cells.append(f"{100 * exact / total:>21.1f}% {100 * wrong / total:>5.1f}%")
    print(f"{'all':<16}" + "".join(cells))
    print(f"ours: median {statistics.median(ours_ms):.2f} ms per diff")


if __name__ == "__main__":
    main()
