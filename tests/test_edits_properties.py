"""Properties of the parser and applier: garbage never raises; a real diff whose
line numbers drifted and whose whitespace was disturbed still applies exactly."""

from __future__ import annotations

import difflib
import random
import re

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ocaml_ai_ls.edits.apply import apply_file_edit, apply_hunks
from ocaml_ai_ls.edits.model import FileEdit, Hunk
from ocaml_ai_ls.edits.parse import parse_answer
from tests.editor import EXAMPLE


def _module(seed: int) -> str:
    """A realistic OCaml file with distinct items (the shape of real code)."""
    rng = random.Random(seed)
    out = [(EXAMPLE / "lib" / "shapes.ml").read_text()]
    for i in range(12):
        kind = rng.randrange(3)
        if kind == 0:
            out.append(
                f"let rec walk_{i} acc = function\n  | [] -> List.rev acc\n"
                f"  | x :: xs -> walk_{i} (x * {i + 2} :: acc) xs\n"
            )
        elif kind == 1:
            out.append(
                f"type record_{i} = {{\n  name_{i} : string;\n  size_{i} : int;\n}}\n\n"
                f"let make_{i} name = {{ name_{i} = name; size_{i} = String.length name }}\n"
            )
        else:
            out.append(
                f"module Table_{i} = struct\n  let table = Hashtbl.create {i + 7}\n\n"
                f"  let add_{i} k v = Hashtbl.replace table k v\n\n"
                f"  let find_{i} k = Hashtbl.find_opt table k\nend\n"
            )
    return "\n".join(out)


FILES = [_module(seed) for seed in range(4)]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_random_bytes_never_raise(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    result = parse_answer(text)
    assert result.usable or result.reason
    for edit in result.edits:
        apply_file_edit(FILES[0], edit)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(max_size=30), max_size=6),
    st.lists(st.text(max_size=30), max_size=6),
    st.none() | st.integers(-5, 500),
)
def test_random_hunks_never_raise(old: list[str], new: list[str], hint: int | None) -> None:
    hunk = Hunk(tuple(old), tuple(new), hint)
    apply_hunks(FILES[1], [hunk])
    apply_file_edit(None, FileEdit("x.ml", (hunk,)))


def _real_edit(rng: random.Random, text: str) -> str:
    """Replace, insert or delete a few line ranges: the shape of a small commit."""
    lines = text.split("\n")
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(1, len(lines) - 2)
        action = rng.randrange(3)
        if action == 0:
            lines[at] = lines[at].replace("let", "let (* changed *)", 1) + " (* edited *)"
        elif action == 1:
            lines[at:at] = [f"let inserted_{at} = {rng.randrange(100)}", ""]
        else:
            del lines[at : at + rng.randint(1, 2)]
    return "\n".join(lines)


def _noisy(diff: str, rng: random.Random, shift: int, crlf: bool, no_prefix: bool) -> str:
    out = []
    for line in diff.split("\n"):
        if line.startswith("@@"):
            line = re.sub(r"-(\d+)", lambda m: f"-{max(1, int(m.group(1)) + shift)}", line, count=1)
        elif line.startswith(("--- a/", "+++ b/")) and no_prefix:
            line = line[:4] + line[6:]
        elif line[:1] in (" ", "+", "-") and not line.startswith(("---", "+++")):
            line = line.rstrip()  # trailing whitespace stripped, " " of empty context dropped
        out.append(line)
    text = "\n".join(out)
    return text.replace("\n", "\r\n") if crlf else text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, len(FILES) - 1),
    st.integers(0, 10_000),
    st.integers(-30, 30).filter(lambda s: s != 0),
    st.booleans(),
    st.booleans(),
)
def test_drifted_and_disturbed_real_diffs_apply_to_the_same_result(
    which: int, seed: int, shift: int, crlf: bool, no_prefix: bool
) -> None:
    before = FILES[which]
    rng = random.Random(seed)
    after = _real_edit(rng, before)
    diff = "\n".join(
        difflib.unified_diff(
            before.split("\n"), after.split("\n"), "a/lib/m.ml", "b/lib/m.ml", lineterm=""
        )
    )
    # ambiguity is refused by design (tested elsewhere): here every hunk is unique
    for hunk in parse_answer(diff).edits[0].hunks:
        old = "\n".join(hunk.old)
        assume(before.count(old) == 1)
    noisy = _noisy(diff, rng, shift, crlf, no_prefix)
    parsed = parse_answer(f"Here is the change:\n```diff\n{noisy}\n```\nDone.")
    assert [e.path for e in parsed.edits] == ["lib/m.ml"], parsed
    result = apply_file_edit(before, parsed.edits[0])
    assert result.text == after, result.failures


def _level_edit(rng: random.Random, text: str) -> str:
    """Like `_real_edit`, but every new line takes the indentation of the line it goes by."""
    lines = text.split("\n")
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(1, len(lines) - 2)
        indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
        action = rng.randrange(3)
        if action == 0 and lines[at].strip():
            lines[at] = lines[at].replace("let", "let (* changed *)", 1) + " (* edited *)"
        elif action == 1:
            lines[at:at] = [f"{indent}let inserted_{at} = {rng.randrange(100)} in", ""]
        else:
            del lines[at : at + rng.randint(1, 2)]
    return "\n".join(lines)


def _reindented(diff: str, deeper: bool, context_only: bool) -> str:
    """Each hunk's body one space deeper or shallower: its context lines alone, or all."""
    out: list[str] = []
    hunks: list[list[str]] = []
    for line in diff.split("\n"):
        if line.startswith("@@"):
            hunks.append([])
        (hunks[-1] if hunks else out).append(line)
    for hunk in hunks:
        moved = [
            k
            for k, x in enumerate(hunk)
            if k
            and x[:1] in (" ", "-", "+")
            and x[1:].strip()
            and (x[0] == " " or not context_only)
        ]
        shallower = not deeper and all(hunk[k][1:2] == " " for k in moved)
        for k in moved:
            x = hunk[k]
            hunk[k] = x[0] + x[2:] if shallower else x[0] + " " + x[1:]
        out.extend(hunk)
    return "\n".join(out)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, len(FILES) - 1),
    st.integers(0, 10_000),
    st.booleans(),
    st.booleans(),
)
def test_indentation_drift_is_applied_exactly_or_refused_never_wrong(
    which: int, seed: int, deeper: bool, context_only: bool
) -> None:
    """Context lines drifted alone, or whole hunks shifted: the `-` lines or the file's
    levels place the added lines (indented like their neighbours), or it is refused."""
    before = FILES[which]
    after = _level_edit(random.Random(seed), before)
    assume(after != before)
    diff = "\n".join(
        difflib.unified_diff(
            before.split("\n"), after.split("\n"), "a/lib/m.ml", "b/lib/m.ml", lineterm=""
        )
    )
    noisy = _reindented(diff, deeper, context_only)
    parsed = parse_answer(noisy)
    assert [e.path for e in parsed.edits] == ["lib/m.ml"], parsed
    result = apply_file_edit(before, parsed.edits[0])
    assert result.text is None or result.text == after
