"""`ocaml-ai-ls doctor` as a user runs it: a real process, a real model server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.editor import copy_example, server_env
from tests.model_server import ScriptedModel


def doctor(root: Path, env: dict[str, str]) -> tuple[int, list[dict[str, Any]]]:
    done = subprocess.run(
        [sys.executable, "-m", "ocaml_ai_ls", "doctor", "--root", str(root), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    return done.returncode, json.loads(done.stdout)


def by_check(findings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["check"].split(":")[0]: f for f in findings}


def test_a_working_setup_has_no_problems(tmp_path: Path, model: ScriptedModel) -> None:
    root = copy_example(tmp_path)
    code, findings = doctor(root, server_env(model.base_url, OCAML_AI_MODEL="scripted-model"))
    found = by_check(findings)
    assert code == 0, findings
    assert {f["status"] for f in findings} == {"ok"}
    assert set(found) == {"settings", "model", "dune", "OCaml compiler", "project", "metrics"}
    assert "models listed" in found["model"]["detail"]
    assert model.paths == ["/v1/models"]


def test_problems_are_named_with_their_fix(tmp_path: Path, model: ScriptedModel) -> None:
    root = copy_example(tmp_path)
    (root / ".ocaml-ai.toml").write_text(
        '[routing]\narms = [{name = "b", model = "not-served"}]\n'
        '[telemetry]\ndb = "' + str(tmp_path / "bad.sqlite3") + '"\n'
    )
    (tmp_path / "bad.sqlite3").write_text("not a database\n" * 50)
    env = server_env(model.base_url, OCAML_AI_MODEL="scripted-model", OCAML_AI_API_KEY="sk-x1")
    code, findings = doctor(root, env)
    found = by_check(findings)
    assert code == 1
    assert found["arm 'b'"]["status"] == "warn" and "not-served" in found["arm 'b'"]["detail"]
    assert found["metrics"]["status"] == "FAIL" and "move the file away" in found["metrics"]["fix"]
    assert "key from $OCAML_AI_API_KEY" in found["model"]["detail"]
    assert "sk-x1" not in json.dumps(findings)
    gone = server_env("http://127.0.0.1:9/v1")
    code, findings = doctor(root, gone)
    model_finding = by_check(findings)["model"]
    assert code == 1 and model_finding["status"] == "FAIL"
    assert "Cannot reach the model endpoint http://127.0.0.1:9/v1" in model_finding["detail"]
