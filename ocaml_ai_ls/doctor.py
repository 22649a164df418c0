"""`ocaml-ai-ls doctor`: what would go wrong, and how to fix it, before it does.

It reads the settings the server would use for a root, reaches every configured
model (listing its models where the API allows), finds dune and the OCaml
compiler, and opens the metrics database. Exit status 0 when nothing failed.
API keys are only said to be set or not, never shown.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TextIO

from .config import (
    CONFIG_FILE,
    ENV_API_KEY,
    ModelSettings,
    Settings,
    SettingsError,
    SettingsLayers,
    api_key,
    read_config_file,
)
from .metrics.store import default_db_path
from .providers import make_provider
from .providers.base import ModelError
from .workspace import command_root

OK, WARN, FAIL = "ok", "warn", "FAIL"
#: Seconds to wait for a model endpoint to list its models.
REACH_TIMEOUT = 10.0
#: Models named in a listing, at most.
LISTED = 8


@dataclass(frozen=True)
class Finding:
    check: str
    status: str
    detail: str
    fix: str = ""


def check_settings(root: Path) -> tuple[Settings, list[Finding]]:
    """The settings the server would start with (the file and the environment)."""
    try:
        layers = SettingsLayers(file=read_config_file(root))
    except SettingsError as exc:
        return Settings(), [Finding("settings", FAIL, str(exc), f"fix or remove {CONFIG_FILE}")]
    settings, errors = layers.build()
    if errors:
        fix = f"correct the named keys in {root / CONFIG_FILE} or the environment"
        return settings, [Finding("settings", FAIL, "; ".join(errors), fix)]
    source = CONFIG_FILE if layers.file else "defaults"
    return settings, [Finding("settings", OK, f"from {source} and the environment")]


def models_to_reach(settings: Settings) -> list[tuple[str, ModelSettings]]:
    """Every distinct model a request may go to: `[model]`, each arm, the fallback."""
    found: list[tuple[str, ModelSettings]] = [("model", settings.model)]
    for arm in settings.routing.arms:
        found.append((f"arm {arm.name!r}", arm.model_settings(settings.model)))
    if settings.fallback is not None:
        found.append(("fallback", settings.fallback))
    seen: set[tuple[str, str, str, str]] = set()
    unique = []
    for name, m in found:
        key = (m.provider, m.base_url, m.model, m.api_key_env)
        if key not in seen:
            seen.add(key)
            unique.append((name, m))
    return unique


async def reach(name: str, model: ModelSettings) -> Finding:
    """List the endpoint's models and say whether the configured one is among them."""
    what = f"{name}: {model.provider} {model.base_url} {model.model}"
    key = api_key(model)
    key_note = f"key from ${model.api_key_env or ENV_API_KEY}" if key else "no key set"
    provider = make_provider(replace(model, retries=0), key)  # say it at once
    try:
        async with asyncio.timeout(REACH_TIMEOUT):
            names = await provider.list_models()
    except ModelError as exc:
        fix = (
            ""
            if key or model.provider != "anthropic"
            else (
                'set ANTHROPIC_API_KEY and model.api_key_env = "ANTHROPIC_API_KEY" (or '
                f"{ENV_API_KEY})"
            )
        )
        return Finding(what, FAIL, f"{exc} ({key_note})", fix)
    except TimeoutError:
        return Finding(what, FAIL, f"no answer within {REACH_TIMEOUT:g} s ({key_note})")
    finally:
        await provider.aclose()
    shown = ", ".join(names[:LISTED]) + (", …" if len(names) > LISTED else "")
    if names and model.model not in names:
        return Finding(
            what,
            WARN,
            f"reachable ({key_note}), but {model.model!r} is not among its {len(names)} "
            f"models: {shown}",
            "set model.model (or OCAML_AI_MODEL) to one of them, or pull/load the model",
        )
    listed = f"{len(names)} models listed" if names else "it lists no models"
    return Finding(what, OK, f"reachable ({key_note}); {listed}")


def _version(command: list[str]) -> str | None:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout else None


def check_toolchain(root: Path) -> list[Finding]:
    """dune (shadow builds) and the compiler (module-by-module checks)."""
    install = "apt-get install ocaml-nox ocaml-dune ocaml-findlib (or opam install dune ocamlfind)"
    out: list[Finding] = []
    dune = shutil.which("dune")
    version = _version(["dune", "--version"]) if dune else None
    if version is None:
        out.append(
            Finding("dune", WARN, "not found: candidates are checked module by module", install)
        )
    else:
        out.append(Finding("dune", OK, f"{version} ({dune})"))
    ocamlfind = _version(["ocamlfind", "ocamlc", "-version"]) if shutil.which("ocamlfind") else None
    ocamlc = _version(["ocamlc", "-version"]) if shutil.which("ocamlc") else None
    if ocamlfind is None and ocamlc is None:
        out.append(Finding("OCaml compiler", FAIL, "neither ocamlfind nor ocamlc found", install))
    else:
        via = "ocamlfind ocamlc" if ocamlfind else "ocamlc (no ocamlfind: libraries unknown)"
        out.append(Finding("OCaml compiler", OK, f"{ocamlfind or ocamlc} via {via}"))
    if (root / "dune-project").is_file():
        out.append(Finding("project", OK, f"{root} is a dune project: shadow builds are used"))
    else:
        out.append(
            Finding(
                "project",
                WARN,
                f"{root} has no dune-project: modules are type-checked one by one",
                "run doctor with --root at the project's dune-project",
            )
        )
    return out


def check_metrics(settings: Settings) -> Finding:
    """Can the metrics database be opened (it is created on the first generation)?"""
    if not settings.telemetry.enabled:
        return Finding("metrics", OK, "off (telemetry.enabled = false)")
    path = default_db_path(settings.telemetry.db)
    if not path.exists():
        parent = next((p for p in [path.parent, *path.parents] if p.exists()), None)
        if parent is None or not parent.is_dir():
            return Finding(
                "metrics", FAIL, f"{path}: {parent} is not a directory", "set telemetry.db"
            )
        return Finding("metrics", OK, f"{path} (created on the first generation)")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            rows = db.execute("SELECT count(*) FROM generations").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        return Finding(
            "metrics",
            FAIL,
            f"{path}: {exc}",
            "move the file away (it is kept, never overwritten) or set telemetry.db",
        )
    return Finding("metrics", OK, f"{path} ({rows} generations recorded)")


async def diagnose(root: Path) -> list[Finding]:
    settings, findings = check_settings(root)
    found = await asyncio.gather(*(reach(n, m) for n, m in models_to_reach(settings)))
    findings.extend(found)
    findings.extend(check_toolchain(root))
    findings.append(check_metrics(settings))
    return findings


def run_doctor(root: Path | None, as_json: bool, out: TextIO = sys.stdout) -> int:
    """Print every finding; 0 when none failed, 1 otherwise."""
    where = command_root(root)
    findings = asyncio.run(diagnose(where))
    if as_json:
        print(json.dumps([asdict(f) for f in findings], indent=2), file=out)
    else:
        print(f"ocaml-ai-ls doctor: {where}", file=out)
        for f in findings:
            print(f"  {f.status:<5} {f.check}: {f.detail}", file=out)
            if f.fix:
                print(f"        fix: {f.fix}", file=out)
        failed = sum(f.status == FAIL for f in findings)
        print(f"{failed} problem(s)" if failed else "no problems", file=out)
    return 1 if any(f.status == FAIL for f in findings) else 0
