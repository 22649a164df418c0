"""The VS Code extension (clients/vscode): its manifest, its build and its unit tests.

The unit tests run with node's own test runner, without VS Code: the extension's
logic (request arguments, view items, ranking, edit application for the diff
preview, feedback), and its commands driven with stand-ins for `vscode` and the
language client. One test here also feeds that logic a result the real server
just produced, so the two sides cannot drift apart unnoticed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ocaml_ai_ls.code_actions import COMMAND
from ocaml_ai_ls.request import MAX_CANDIDATES, MAX_INSTRUCTION_CHARS
from ocaml_ai_ls.server import CONFIG_SECTION
from ocaml_ai_ls.verify.result import RANKED
from tests.editor import server_env
from tests.model_server import Reply, ScriptedModel

CLIENT = Path(__file__).resolve().parent.parent / "clients" / "vscode"
NEEDS_NODE = pytest.mark.skipif(
    shutil.which("npm") is None or shutil.which("node") is None,
    reason="node and npm are not installed",
)
#: `npm ci` downloads on a fresh machine: room for its own timeout below.
SLOW = pytest.mark.timeout(420)


def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CLIENT / "package.json").read_text(encoding="utf-8"))
    return data


def run(cmd: list[str], timeout: float, cwd: Path = CLIENT) -> subprocess.CompletedProcess[str]:
    """Run a command in the extension's folder; fail with its output, never hang."""
    try:
        done = subprocess.run(
            cmd,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(cmd)} took more than {timeout} s\n{exc.stdout!r}\n{exc.stderr!r}")
    assert done.returncode == 0, (
        f"{' '.join(cmd)} exited {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )
    return done


@pytest.fixture(scope="module")
def built() -> Path:
    """The extension installed from its lock file and compiled (once per session)."""
    run(["npm", "ci", "--no-audit", "--no-fund"], timeout=300)
    run(["npm", "run", "compile"], timeout=120)
    return CLIENT / "out"


def test_manifest_contributes_the_command_view_and_settings() -> None:
    pkg = manifest()
    assert pkg["name"] == "ocaml-ai-ls"
    assert pkg["main"] == "./out/extension.js"
    assert pkg["engines"]["vscode"] == "^1.82.0"
    assert {"onLanguage:ocaml", "onLanguage:ocaml.interface"} <= set(pkg["activationEvents"])
    contributes = pkg["contributes"]
    commands = {c["command"]: c["title"] for c in contributes["commands"]}
    assert commands["ocamlAi.edit"] == "OCaml AI: Edit…"
    assert {"ocamlAi.apply", "ocamlAi.reject"} <= set(commands)
    views = [v for group in contributes["views"].values() for v in group]
    assert {"id": "ocamlAi.candidates", "name": "OCaml AI candidates"}.items() <= views[0].items()
    inline = {
        m["command"]
        for m in contributes["menus"]["view/item/context"]
        if m["group"].startswith("inline")
    }
    assert inline == {"ocamlAi.apply", "ocamlAi.reject"}
    props = contributes["configuration"]["properties"]
    assert props["ocamlAi.serverCommand"]["type"] == "array"
    assert props["ocamlAi.serverCommand"]["default"] == ["ocaml-ai-ls"]
    assert props["ocamlAi.candidates"]["default"] == 3
    assert props["ocamlAi.candidates"]["maximum"] == MAX_CANDIDATES
    assert props["ocamlAi.settings"]["type"] == "object"
    assert pkg["scripts"]["compile"] == "tsc -p ."
    assert "vscode-languageclient" in pkg["dependencies"]


def test_lock_file_matches_the_manifest() -> None:
    lock = json.loads((CLIENT / "package-lock.json").read_text(encoding="utf-8"))
    root = lock["packages"][""]
    pkg = manifest()
    assert root.get("dependencies", {}) == pkg.get("dependencies", {})
    assert root.get("devDependencies", {}) == pkg.get("devDependencies", {})


def test_the_server_names_the_extension_relies_on() -> None:
    """What candidates.ts hard-codes is what the server answers to."""
    source = (CLIENT / "src" / "candidates.ts").read_text(encoding="utf-8")
    assert f'GENERATE_COMMAND = "{COMMAND}"' in source
    assert 'FEEDBACK_COMMAND = "ocaml-ai.feedback"' in source
    assert f'SETTINGS_SECTION = "{CONFIG_SECTION}"' in source
    assert f"MAX_CANDIDATES = {MAX_CANDIDATES};" in source
    assert f"MAX_INSTRUCTION_CHARS = {MAX_INSTRUCTION_CHARS};" in source
    assert "RANKED: Status[] = [" + ", ".join(f'"{s}"' for s in RANKED) + "]" in source


@NEEDS_NODE
@SLOW
def test_unit_tests_pass_with_node(built: Path) -> None:
    done = run(["npm", "test"], timeout=120)
    out = done.stdout + done.stderr
    assert "# fail 0" in out, out
    assert "# pass 0" not in out, out


GOOD = """lib/shapes.ml
<<<<<<< SEARCH
  | Rect (w, h) -> w *. h
=======
  | Rect (w, h) -> abs_float (w *. h)
>>>>>>> REPLACE

lib/extra.ml
<<<<<<< SEARCH
=======
let extra = 1
>>>>>>> REPLACE
"""
BAD = GOOD.replace("abs_float (w *. h)", "abs (w *. h)").split("\n\nlib/extra.ml")[0] + "\n"

#: Reads a generate result and the project root; prints what the view and preview show.
READ_RESULT = """
const c = require(process.argv[1]);
const fs = require("node:fs");
const url = require("node:url");
const result = c.parseGenerateResult(JSON.parse(fs.readFileSync(0, "utf8")));
const out = c.candidateItems(result).map((item) => ({
  rank: item.rank, status: item.status, description: item.description,
  files: item.files.map((f) => {
    const path = url.fileURLToPath(f.uri);
    const old = fs.existsSync(path) ? fs.readFileSync(path, "utf8") : "";
    return { path: f.path, created: f.created,
             text: c.candidateNewText(result.candidates[item.index].edit, f.uri, old) };
  }),
}));
console.log(JSON.stringify({ message: c.resultMessage(result) ?? null, items: out,
                             feedback: c.feedbackArguments(result.id, true) }));
"""


@NEEDS_NODE
@SLOW
def test_the_logic_reads_what_the_real_server_answers(
    built: Path, project: Path, model: ScriptedModel
) -> None:
    """The server's real answer, through the extension's code: the items, and the
    new texts its preview shows, which are what the server's own --apply writes."""
    model.enqueue(Reply(answers=[BAD, GOOD]))
    args = ["lib/shapes.ml:9", "make areas non-negative", "--json", "--candidates", "2"]
    generated = subprocess.run(
        [sys.executable, "-m", "ocaml_ai_ls", "edit", *args],
        cwd=project,
        env=server_env(model.base_url),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert generated.returncode == 0, generated.stderr
    shown = subprocess.run(
        ["node", "-e", READ_RESULT, str(built / "candidates.js")],
        input=generated.stdout,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert view["message"] is None
    best, second = view["items"]
    assert (best["rank"], best["status"], best["description"]) == (1, "ok", "verified · +2 −1")
    assert second["status"] == "type_error"
    files = {f["path"]: f for f in best["files"]}
    shapes = (project / "lib/shapes.ml").read_text()
    assert files["lib/shapes.ml"]["text"] == shapes.replace(
        "| Rect (w, h) -> w *. h", "| Rect (w, h) -> abs_float (w *. h)"
    )
    assert files["lib/extra.ml"] == {
        "path": "lib/extra.ml",
        "created": True,
        "text": "let extra = 1\n",
    }
    result_id = json.loads(generated.stdout)["id"]
    assert view["feedback"] == {"id": result_id, "accepted": True}
    # the server applying the same answer itself writes exactly what the preview showed
    model.enqueue(GOOD)
    applied = subprocess.run(
        [sys.executable, "-m", "ocaml_ai_ls", "edit", "lib/shapes.ml:9", "x", "--apply"],
        cwd=project,
        env=server_env(model.base_url),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert applied.returncode == 0, applied.stderr
    for path, file in files.items():
        assert (project / path).read_text() == file["text"], path
