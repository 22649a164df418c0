"""One typed settings model and the layers it is built from.

Precedence, lowest first: defaults < `.ocaml-ai.toml` at the workspace root <
`initializationOptions` < `workspace/didChangeConfiguration`; the environment
variables `OCAML_AI_BASE_URL`, `OCAML_AI_MODEL` and `OCAML_AI_API_KEY` override
the endpoint. A layer with an invalid value is reported (naming the key) and
left out, so the server keeps running on the last valid settings.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import cattrs

CONFIG_FILE = ".ocaml-ai.toml"
ENV_BASE_URL = "OCAML_AI_BASE_URL"
ENV_MODEL = "OCAML_AI_MODEL"
ENV_API_KEY = "OCAML_AI_API_KEY"

#: Ollama's OpenAI-compatible endpoint on its default port.
DEFAULT_BASE_URL = "http://127.0.0.1:11434/v1"
DEFAULT_MODEL = "qwen2.5-coder:7b"
#: Wire formats a model can be reached with (see `providers/`).
PROVIDERS = ("openai", "ollama", "anthropic")
#: Edit formats the model can be asked for (see `prompt.py`); the parser reads all.
STRATEGIES = ("search_replace", "unified_diff", "whole_file")
ENV_METRICS_DB = "OCAML_AI_METRICS_DB"


@dataclass(frozen=True)
class ModelSettings:
    """Where the model is, how to call it, and what edit format to ask of it."""

    #: Wire format: "openai" (OpenAI-compatible chat completions: vLLM, llama.cpp,
    #: LM Studio, Ollama's /v1, hosted ones), "ollama" (native /api/chat), "anthropic".
    provider: str = "openai"
    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_MODEL
    #: Name of an extra environment variable holding the API key (the key itself
    #: never lives in settings, so it never lands in a file or a log).
    api_key_env: str = ""
    temperature: float = 0.2
    max_tokens: int = 2048
    #: Seconds to connect, and at most between two bytes of the answer.
    request_timeout: float = 60.0
    #: Seconds for the whole model call, retries and all.
    deadline: float = 180.0
    stream: bool = True
    #: Retries of a call that failed with 429, a 5xx or no connection (with backoff,
    #: honouring Retry-After, within the deadline).
    retries: int = 2
    #: The edit format asked of the model: "search_replace", "unified_diff", "whole_file".
    strategy: str = "search_replace"


@dataclass(frozen=True)
class Arm:
    """One arm of an A/B split: a name, a weight, and what it changes of `[model]`
    (None: as in `[model]`)."""

    name: str
    weight: float = 1.0
    provider: str | None = None
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    strategy: str | None = None

    def model_settings(self, base: ModelSettings) -> ModelSettings:
        changes = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("name", "weight") and getattr(self, f.name) is not None
        }
        return replace(base, **changes)


@dataclass(frozen=True)
class RoutingSettings:
    """How users are split between model arms (see `routing.py`)."""

    #: Who the user is for the split (stable across restarts); empty: OS user@machine.
    user_id: str = ""
    #: No arms: everyone gets `[model]`.
    arms: tuple[Arm, ...] = ()


@dataclass(frozen=True)
class TelemetrySettings:
    """What is recorded of each generation (see `metrics/`), locally only."""

    enabled: bool = True
    #: The SQLite file; empty: $OCAML_AI_METRICS_DB, else the user data directory.
    db: str = ""
    #: Also store prompts and answers (for building datasets); off by default.
    store_prompts: bool = False


@dataclass(frozen=True)
class GenerateSettings:
    """How `ocaml-ai.generate` behaves when the request does not say."""

    #: Answers asked of the model; each is checked, the best is offered.
    candidates: int = 3


@dataclass(frozen=True)
class ContextSettings:
    """How much of the workspace the model is shown (see `context/slicer.py`)."""

    #: Tokens of context per request (estimated at about 4 bytes per token).
    budget_tokens: int = 6000
    #: A current file (or its other half) up to this size is shown whole, else outlined.
    full_file_tokens: int = 1500
    #: Callers of the target shown at most (rank 7).
    max_callers: int = 10


@dataclass(frozen=True)
class VerifySettings:
    """How candidates are checked by the compiler (see `verify/shadow.py`)."""

    #: Shadow copies of a dune project kept warm (0: type-checking off).
    shadows: int = 2
    #: Seconds one dune run may take before it is killed.
    timeout: float = 60.0
    #: Also run `dune test` on a candidate that type-checks.
    tests: bool = False
    #: Rounds in which a candidate that failed to apply or to type-check goes back to
    #: the model with what went wrong (0: none).
    repair_rounds: int = 1
    #: On save, type-check the project in a shadow and publish the errors (source `ocaml-ai`).
    diagnostics: bool = True
    #: The dune profile candidates are built with: `dev` (warnings are errors, as in
    #: `dune build`) or `release` (they are not), or a profile of the project's own.
    profile: str = "dev"


@dataclass(frozen=True)
class SnapshotSettings:
    """Recording the workspace's history with its build state (see `snapshots/`)."""

    #: Off by default: it is the user's code. `ocaml-ai-ls snapshot watch` works anyway.
    enabled: bool = False
    #: Seconds between two looks at the workspace.
    interval: float = 20.0
    #: Snapshots older than this many days are dropped by `snapshot gc`.
    max_age_days: float = 30.0
    #: The store is trimmed (oldest first) to this many megabytes by `snapshot gc`.
    max_megabytes: float = 500.0
    #: An edit episode's net change at most (changed lines, files).
    max_changed_lines: int = 100
    max_files: int = 3
    #: Share of episodes (by a hash of the episode) sent to the held-out file.
    heldout_share: float = 0.1


@dataclass(frozen=True)
class Settings:
    model: ModelSettings = field(default_factory=ModelSettings)
    generate: GenerateSettings = field(default_factory=GenerateSettings)
    context: ContextSettings = field(default_factory=ContextSettings)
    verify: VerifySettings = field(default_factory=VerifySettings)
    #: A second model tried when `[model]` (or an arm's) fails after its retries.
    fallback: ModelSettings | None = None
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    snapshots: SnapshotSettings = field(default_factory=SnapshotSettings)

    def api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The API key of `[model]` from the environment, or None."""
        return api_key(self.model, environ)


def api_key(model: ModelSettings, environ: Mapping[str, str] | None = None) -> str | None:
    """A model's API key from the environment, or None; never stored in settings.

    The variable named by `api_key_env` wins (an arm or fallback on another service
    names its own); else `OCAML_AI_API_KEY`.
    """
    env = os.environ if environ is None else environ
    key = (env.get(model.api_key_env) if model.api_key_env else None) or env.get(ENV_API_KEY)
    return key or None


class SettingsError(ValueError):
    """A settings layer that cannot be used; the message names the source and key."""


_converter = cattrs.Converter(forbid_extra_keys=True)


def _strict(kind: type, accepts: tuple[type, ...]) -> None:
    """No silent coercion: "false" is not a bool and 2.5 is not an int."""

    def hook(value: Any, _: type) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise ValueError(f"expected {kind.__name__}, got a boolean")
        if not isinstance(value, accepts):
            raise ValueError(f"expected {kind.__name__}, got {type(value).__name__}")
        return kind(value)

    _converter.register_structure_hook(kind, hook)


_strict(bool, (bool,))
_strict(int, (int,))
_strict(float, (int, float))
_strict(str, (str,))
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def _snake_keys(value: Any) -> Any:
    """Accept camelCase keys (as VS Code settings have them) beside snake_case."""
    if isinstance(value, Mapping):
        return {
            (_CAMEL.sub(r"_\1", k).lower() if isinstance(k, str) else k): _snake_keys(v)
            for k, v in value.items()
        }
    return value


def _merge(base: dict[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _as_dict(settings: Any) -> dict[str, Any]:
    assert is_dataclass(settings)
    return {
        f.name: _as_dict(getattr(settings, f.name))
        if is_dataclass(getattr(settings, f.name))
        else getattr(settings, f.name)
        for f in fields(settings)
    }


def _model_problems(m: ModelSettings, where: str) -> list[str]:
    out: list[str] = []
    if m.provider not in PROVIDERS:
        out.append(f"{where}.provider must be one of {', '.join(PROVIDERS)} (got {m.provider!r})")
    if not re.match(r"^https?://[^\s/]+", m.base_url):
        out.append(f"{where}.base_url must be an http(s) URL (got {m.base_url!r})")
    if not m.model.strip():
        out.append(f"{where}.model must not be empty")
    if not 0.0 <= m.temperature <= 2.0:
        out.append(f"{where}.temperature must be between 0 and 2 (got {m.temperature})")
    if not 1 <= m.max_tokens <= 1_000_000:
        out.append(f"{where}.max_tokens must be between 1 and 1000000 (got {m.max_tokens})")
    if not 0 < m.request_timeout <= 3600:
        out.append(
            f"{where}.request_timeout must be in (0, 3600] seconds (got {m.request_timeout})"
        )
    if not 0 < m.deadline <= 3600:
        out.append(f"{where}.deadline must be in (0, 3600] seconds (got {m.deadline})")
    if not 0 <= m.retries <= 10:
        out.append(f"{where}.retries must be between 0 and 10 (got {m.retries})")
    if m.strategy not in STRATEGIES:
        out.append(f"{where}.strategy must be one of {', '.join(STRATEGIES)} (got {m.strategy!r})")
    return out


def _routing_problems(s: Settings) -> list[str]:
    out: list[str] = []
    names = [arm.name for arm in s.routing.arms]
    for i, arm in enumerate(s.routing.arms):
        where = f"routing.arms[{i}]"
        if not arm.name.strip():
            out.append(f"{where}.name must not be empty")
        elif names.count(arm.name) > 1:
            out.append(f"{where}.name {arm.name!r} is used by more than one arm")
        if not 0 <= arm.weight <= 1_000_000:
            out.append(f"{where}.weight must be between 0 and 1000000 (got {arm.weight})")
        out.extend(_model_problems(arm.model_settings(s.model), where))
    if s.routing.arms and not any(arm.weight > 0 for arm in s.routing.arms):
        out.append("routing.arms: at least one arm needs a weight above 0")
    return out


def _problems(s: Settings) -> list[str]:
    """Range checks that the types alone cannot express."""
    g, c = s.generate, s.context
    out = _model_problems(s.model, "model")
    if s.fallback is not None:
        out.extend(_model_problems(s.fallback, "fallback"))
    out.extend(_routing_problems(s))
    sn = s.snapshots
    if not 1 <= sn.interval <= 86400:
        out.append(f"snapshots.interval must be between 1 and 86400 seconds (got {sn.interval})")
    if not 0 < sn.max_age_days <= 36500:
        out.append(f"snapshots.max_age_days must be in (0, 36500] (got {sn.max_age_days})")
    if not 0 < sn.max_megabytes <= 1_000_000:
        out.append(f"snapshots.max_megabytes must be in (0, 1000000] (got {sn.max_megabytes})")
    if not 1 <= sn.max_changed_lines <= 100_000 or not 1 <= sn.max_files <= 1000:
        out.append("snapshots.max_changed_lines and max_files must be at least 1")
    if not 0 <= sn.heldout_share < 1:
        out.append(f"snapshots.heldout_share must be in [0, 1) (got {sn.heldout_share})")
    if not 1 <= g.candidates <= 10:
        out.append(f"generate.candidates must be between 1 and 10 (got {g.candidates})")
    if not 200 <= c.budget_tokens <= 1_000_000:
        out.append(f"context.budget_tokens must be between 200 and 1000000 (got {c.budget_tokens})")
    if not 0 <= c.full_file_tokens <= 1_000_000:
        out.append(f"context.full_file_tokens must be at least 0 (got {c.full_file_tokens})")
    if not 0 <= c.max_callers <= 1000:
        out.append(f"context.max_callers must be between 0 and 1000 (got {c.max_callers})")
    v = s.verify
    if not 0 <= v.shadows <= 16:
        out.append(f"verify.shadows must be between 0 and 16 (got {v.shadows})")
    if not 0 < v.timeout <= 3600:
        out.append(f"verify.timeout must be in (0, 3600] seconds (got {v.timeout})")
    if not 0 <= v.repair_rounds <= 5:
        out.append(f"verify.repair_rounds must be between 0 and 5 (got {v.repair_rounds})")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", v.profile):
        out.append(
            f"verify.profile must be a dune profile name such as dev or release (got {v.profile!r})"
        )
    return out


def structure(data: Mapping[str, Any], source: str) -> Settings:
    """Build settings from one merged mapping, or raise SettingsError naming the key."""
    if not isinstance(data, Mapping):
        raise SettingsError(f"{source}: settings must be an object, got {type(data).__name__}")
    try:
        settings = _converter.structure(_snake_keys(data), Settings)
    except Exception as exc:  # cattrs raises a tree of errors; flatten it
        details = (
            cattrs.transform_error(exc)
            if isinstance(exc, cattrs.BaseValidationError)
            else [str(exc)]
        )
        pretty = "; ".join(d.replace("$.", "").replace(" @ ", " at ") for d in details)
        raise SettingsError(f"{source}: invalid setting: {pretty}") from None
    problems = _problems(settings)
    if problems:
        raise SettingsError(f"{source}: " + "; ".join(problems))
    return settings


def read_config_file(root: Path | None) -> dict[str, Any]:
    """The `.ocaml-ai.toml` layer at the workspace root, or {} if there is none."""
    if root is None:
        return {}
    return read_config_path(root / CONFIG_FILE, missing_ok=True)


def read_config_path(path: Path, missing_ok: bool = False) -> dict[str, Any]:
    """The layer of a settings file (a `--config FILE` too); SettingsError naming it when
    it cannot be read or is not TOML ({} for a missing file when `missing_ok`)."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        if missing_ok:
            return {}
        raise SettingsError(f"{path}: {exc}") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: {exc}") from None


def environment_layer(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if environ is None else environ
    model: dict[str, Any] = {}
    if env.get(ENV_BASE_URL):
        model["base_url"] = env[ENV_BASE_URL]
    if env.get(ENV_MODEL):
        model["model"] = env[ENV_MODEL]
    return {"model": model} if model else {}


@dataclass
class SettingsLayers:
    """The raw layers, so any one can change and the whole is rebuilt."""

    file: dict[str, Any] = field(default_factory=dict)
    init_options: dict[str, Any] = field(default_factory=dict)
    client: dict[str, Any] = field(default_factory=dict)

    def build(self, environ: Mapping[str, str] | None = None) -> tuple[Settings, list[str]]:
        """Merge every valid layer in precedence order; report the invalid ones."""
        errors: list[str] = []
        merged = _as_dict(Settings())
        layers: list[tuple[str, Any]] = [
            (CONFIG_FILE, self.file),
            ("initializationOptions", self.init_options),
            ("workspace configuration", self.client),
            ("environment", environment_layer(environ)),
        ]
        settings = Settings()
        for source, layer in layers:
            if not layer:
                continue
            if not isinstance(layer, Mapping):
                errors.append(f"{source}: settings must be an object")
                continue
            candidate = _merge(merged, _snake_keys(layer))
            try:
                settings = structure(candidate, source)
            except SettingsError as exc:
                errors.append(str(exc))
                continue
            merged = candidate
        return settings, errors


def client_section(raw: Any) -> dict[str, Any]:
    """Pick our section out of what an editor sends as settings.

    Editors send either our section itself or an object holding it under
    `ocaml-ai` / `ocamlAi`.
    """
    if not isinstance(raw, Mapping):
        return {}
    for key in ("ocaml-ai", "ocamlAi", "ocaml_ai"):
        if isinstance(raw.get(key), Mapping):
            return dict(raw[key])
    ours = {f.name for f in fields(Settings)}
    return dict(raw) if ours & set(_snake_keys(raw)) else {}
