"""`ocaml-ai-ls context PATH[:LINE]` as a user runs it: a subprocess on a copy
of a fixture project, printing JSON or numbered pieces, and one-line errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "projects"
#: `[RANK ROLE] path:start-end  label (N tokens)`
HEADER = re.compile(
    r"^\[(\d) ([^\]]+)\] (\S+):(\d+)-(\d+)  (.*) \((\d+) tokens(?:, score ([0-9.]+))?\)$"
)
NUMBERED = re.compile(r"^ *(\d+)\| (.*)$")


def copy_fixture(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    shutil.copytree(FIXTURES / name, root)
    return root


def run(root: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCAML_AI_")}
    return subprocess.run(
        [sys.executable, "-m", "ocaml_ai_ls", "context", *args],
        cwd=cwd or root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def run_json(root: Path, *args: str) -> dict[str, Any]:
    proc = run(root, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    result = json.loads(proc.stdout)
    assert isinstance(result, dict)
    return result


@pytest.fixture
def wrapped(tmp_path: Path) -> Path:
    return copy_fixture(tmp_path, "wrapped")


def test_json_has_the_target_and_definitions_from_other_files(wrapped: Path) -> None:
    result = run_json(wrapped, "bin/main.ml:26", "--root", str(wrapped))
    assert result["path"] == "bin/main.ml"
    assert result["target"] == {
        "path": "bin/main.ml",
        "startLine": 25,
        "endLine": 26,
        "kind": "value_definition",
        "name": "centroids",
    }
    first = result["pieces"][0]
    assert (first["rank"], first["path"], first["lines"]) == (1, "bin/main.ml", [25, 26])
    assert first["label"] == "`centroids`"
    rank4 = [(p["path"], p["label"], p["text"]) for p in result["pieces"] if p["rank"] == 4]
    assert (
        "lib/shape.mli",
        "`G.Shape.centroid`: function centroid",
        "val centroid : t -> Vec.t",
    ) in rank4
    assert (
        "lib/vec.mli",
        "`G.Vec.to_string`: function to_string",
        "val to_string : t -> string",
    ) in rank4
    # from the file being edited, only the alias its paths go through (`module G = Geo`)
    assert [text for path, _, text in rank4 if path == "bin/main.ml"] in ([], ["module G = Geo"])
    assert all("score" in p and p["reason"] for p in result["pieces"][1:])
    for p in result["pieces"]:
        lines = (wrapped / p["path"]).read_text().splitlines()
        assert p["text"] == "\n".join(lines[n - 1] for n in p["lines"]), p["label"]


def test_the_root_defaults_to_the_nearest_dune_project(wrapped: Path) -> None:
    """Run from elsewhere with an absolute path and no --root: the same slice."""
    with_root = run_json(wrapped, "bin/main.ml:26", "--root", str(wrapped))
    proc = run(wrapped, str(wrapped / "bin/main.ml:26"), "--json", cwd=wrapped.parent)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == with_root


def test_plain_output_lists_numbered_pieces(wrapped: Path) -> None:
    as_json = run_json(wrapped, "bin/main.ml:26", "--root", str(wrapped))
    proc = run(wrapped, "bin/main.ml:26", "--root", str(wrapped))
    assert proc.returncode == 0 and proc.stderr == ""
    out = proc.stdout.splitlines()
    assert out[0] == f"bin/main.ml: {as_json['tokens']} of {as_json['budget']} tokens"
    assert out[1:5] == [
        "",
        "[1 the target] bin/main.ml:25-26  `centroids` (31 tokens)",
        "25| let centroids (scene : G.Scene.t) =",
        "26|   List.map (fun s -> G.Vec.to_string (G.Shape.centroid s)) scene.shapes",
    ]
    # every header is followed by its numbered lines, then a blank line; as in the JSON
    blocks: list[dict[str, Any]] = []
    for line in out[1:]:
        if line == "":
            continue
        head = HEADER.match(line)
        if head:
            rank, role, path, start, end, label, tokens, score = head.groups()
            blocks.append(
                {
                    "rank": int(rank),
                    "role": role,
                    "path": path,
                    "startLine": int(start),
                    "endLine": int(end),
                    "label": label,
                    "tokens": int(tokens),
                    "score": score or "1.000",
                    "lines": [],
                    "text": [],
                }
            )
            continue
        numbered = NUMBERED.match(line)
        assert numbered and blocks, line
        blocks[-1]["lines"].append(int(numbered[1]))
        blocks[-1]["text"].append(numbered[2])
    for block in blocks:
        block["text"] = "\n".join(block["text"])
    expected = [
        {**{k: v for k, v in p.items() if k != "reason"}, "score": f"{p['score']:.3f}"}
        for p in as_json["pieces"]
    ]
    assert blocks == expected
    assert {b["rank"] for b in blocks} >= {1, 2, 4, 6, 7}


@pytest.mark.parametrize("with_instruction", [True, False])
def test_an_instruction_adds_the_names_it_mentions(tmp_path: Path, with_instruction: bool) -> None:
    root = copy_fixture(tmp_path, "functors")
    extra = ["--instruction", "use IS.of_list"] if with_instruction else []
    result = run_json(root, "bin/main.ml:22", "--root", str(root), *extra)
    assert result["target"]["name"] == "squares"
    named = [p for p in result["pieces"] if p["reason"] == "named in the instruction"]
    if not with_instruction:
        assert named == []
        return
    [piece] = named
    assert piece["rank"] == 4 and piece["path"] == "lib/kv.mli"
    assert piece["label"] == "`IS.of_list`: function of_list"
    assert piece["lines"] == [42]
    assert piece["text"] == "  val of_list : (key * 'a) list -> 'a t"


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("bin/nope.ml:1", "ocaml-ai-ls context: cannot read {root}/bin/nope.ml"),
        ("bin/main.ml:86", "ocaml-ai-ls context: line 86 is past the end of the file (85 lines)"),
        (
            "bin/main.ml:9999",
            "ocaml-ai-ls context: line 9999 is past the end of the file (85 lines)",
        ),
        (
            "../outside.ml:1",
            "ocaml-ai-ls context: {parent}/outside.ml is not inside the root {root}",
        ),
        ("bin", "ocaml-ai-ls context: cannot read {root}/bin"),
    ],
)
def test_errors_are_one_line_without_a_traceback(
    wrapped: Path, location: str, message: str
) -> None:
    (wrapped.parent / "outside.ml").write_text("let x = 1\n")
    proc = run(wrapped, location, "--root", str(wrapped))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == message.format(root=wrapped, parent=wrapped.parent) + "\n"


def test_line_zero_is_a_usage_error(wrapped: Path) -> None:
    proc = run(wrapped, "bin/main.ml:0", "--root", str(wrapped))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    # argparse's usage line, then the one-line reason
    assert proc.stderr.splitlines()[-1] == "ocaml-ai-ls: error: LINE and COL count from 1"
    assert len(proc.stderr.splitlines()) == 2


def test_a_symlink_leading_out_of_the_root_is_refused(wrapped: Path) -> None:
    (wrapped.parent / "outside.ml").write_text("let x = 1\n")
    (wrapped / "bin/link.ml").symlink_to(wrapped.parent / "outside.ml")
    proc = run(wrapped, "bin/link.ml:1", "--root", str(wrapped))
    assert proc.returncode == 2 and proc.stdout == ""
    # the message names where the link leads
    outside = wrapped.parent / "outside.ml"
    assert proc.stderr == f"ocaml-ai-ls context: {outside} is not inside the root {wrapped}\n"


def test_line_one_of_an_empty_file(wrapped: Path) -> None:
    (wrapped / "lib/empty.ml").write_text("")
    proc = run(wrapped, "lib/empty.ml:1", "--root", str(wrapped), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["pieces"][0]["path"] == "lib/empty.ml"


def test_explain_gives_each_pieces_score_and_reason_and_what_did_not_fit(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, "wrapped")
    (root / ".ocaml-ai.toml").write_text("[context]\nbudget_tokens = 400\n")
    proc = run(root, "lib/shape.ml:55", "--instruction", "use the dot product", "--explain")
    assert proc.returncode == 0 and proc.stderr == ""
    out = proc.stdout.splitlines()
    assert re.fullmatch(r"lib/shape\.ml: \d+ of 400 tokens, \d+ pieces", out[0]), out[0]
    assert out[1].strip().startswith("kept always  lib/shape.ml:55-62  `translate`")
    # every kept piece: its score, where it is, what it is; the reason on the next line
    kept = [line for line in out[2:] if line.lstrip().startswith("score ")]
    assert kept and all(re.match(r" +score \d\.\d{3}  \S+:\d+-\d+  ", line) for line in kept)
    assert "                the target uses `Vec.add`" in out
    assert any("declares the target" in line for line in out)
    cut = out.index(next(line for line in out if line.startswith("best of what did not fit")))
    dropped = [line for line in out[cut + 1 :] if line.lstrip().startswith("score ")]
    assert dropped and all(re.search(r": needs \d+ tokens, -?\d+ left$", line) for line in dropped)
    # the same as the JSON, which carries the text too
    as_json = run_json(root, "lib/shape.ml:55", "--instruction", "use the dot product", "--explain")
    assert as_json["explain"] == proc.stdout.rstrip("\n")
    assert len(dropped) == min(15, len(as_json["dropped"]))
    assert all(d["why"] for d in as_json["dropped"])
