"""Settings layers: precedence, validation naming the key, and what survives."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocaml_ai_ls.config import (
    DEFAULT_BASE_URL,
    Settings,
    SettingsError,
    SettingsLayers,
    client_section,
    read_config_file,
)


def test_defaults_point_at_ollama() -> None:
    settings, errors = SettingsLayers().build({})
    assert errors == [] and settings.model.base_url == DEFAULT_BASE_URL


def test_precedence_file_init_client_environment() -> None:
    layers = SettingsLayers(
        file={"model": {"model": "file", "temperature": 0.5, "max_tokens": 100}},
        init_options={"model": {"model": "init", "maxTokens": 200}},
        client={"model": {"model": "client"}},
    )
    settings, errors = layers.build({})
    assert errors == []
    assert (settings.model.model, settings.model.max_tokens, settings.model.temperature) == (
        "client",
        200,
        0.5,
    )
    settings, _ = layers.build({"OCAML_AI_MODEL": "env", "OCAML_AI_BASE_URL": "http://h:1/v1"})
    assert (settings.model.model, settings.model.base_url) == ("env", "http://h:1/v1")


@pytest.mark.parametrize(
    ("layer", "names"),
    [
        ({"model": {"max_tokens": "many"}}, "model.max_tokens"),
        ({"model": {"stream": "false"}}, "model.stream"),
        ({"model": {"temperature": 7}}, "model.temperature"),
        ({"generate": {"candidates": 0}}, "generate.candidates"),
        ({"model": {"base_url": "ftp://x"}}, "model.base_url"),
        ({"modle": {}}, "modle"),
        ({"verify": {"profile": "dev --root /"}}, "verify.profile"),
    ],
)
def test_invalid_layer_is_reported_by_key_and_left_out(
    layer: dict[str, object], names: str
) -> None:
    layers = SettingsLayers(file={"model": {"model": "kept"}}, client=layer)
    settings, errors = layers.build({})
    assert (
        len(errors) == 1 and names in errors[0] and errors[0].startswith("workspace configuration")
    )
    assert settings.model.model == "kept"


def test_api_key_comes_only_from_the_environment() -> None:
    settings = Settings()
    assert settings.api_key({}) is None
    assert settings.api_key({"OCAML_AI_API_KEY": "k1"}) == "k1"
    layers = SettingsLayers(file={"model": {"api_key_env": "OPENAI_API_KEY"}})
    custom, _ = layers.build({})
    assert custom.api_key({"OPENAI_API_KEY": "k2"}) == "k2"


def test_config_file(tmp_path: Path) -> None:
    assert read_config_file(tmp_path) == {}
    (tmp_path / ".ocaml-ai.toml").write_text('[model]\nmodel = "m"\n')
    assert read_config_file(tmp_path) == {"model": {"model": "m"}}
    (tmp_path / ".ocaml-ai.toml").write_text("[model\n")
    with pytest.raises(SettingsError, match=r"\.ocaml-ai\.toml"):
        read_config_file(tmp_path)


def test_client_section_picks_ours() -> None:
    assert client_section({"ocaml-ai": {"model": {"model": "x"}}}) == {"model": {"model": "x"}}
    assert client_section({"generate": {"candidates": 2}}) == {"generate": {"candidates": 2}}
    assert client_section({"python": {"x": 1}}) == {}
    assert client_section(None) == {}


def test_arms_fallback_and_telemetry_are_read_and_checked() -> None:
    toml = {
        "model": {"model": "base-model", "strategy": "unified_diff"},
        "fallback": {"provider": "anthropic", "base_url": "https://api.example.com"},
        "routing": {
            "userId": "alice",
            "arms": [
                {"name": "a", "weight": 3},
                {"name": "b", "provider": "ollama", "model": "qwen", "strategy": "whole_file"},
            ],
        },
        "telemetry": {"storePrompts": True, "db": "/tmp/m.sqlite3"},
    }
    settings, errors = SettingsLayers(file=toml).build({})
    assert errors == []
    a, b = settings.routing.arms
    assert settings.routing.user_id == "alice" and a.weight == 3.0
    assert a.model_settings(settings.model).model == "base-model"
    assert a.model_settings(settings.model).strategy == "unified_diff"
    b_model = b.model_settings(settings.model)
    assert (b_model.provider, b_model.model, b_model.strategy) == ("ollama", "qwen", "whole_file")
    assert settings.fallback is not None and settings.fallback.provider == "anthropic"
    assert settings.telemetry.store_prompts and settings.telemetry.db == "/tmp/m.sqlite3"


def test_bad_arms_name_the_key() -> None:
    bad = {
        "routing": {
            "arms": [
                {"name": "a", "weight": 0},
                {"name": "a", "weight": 0, "provider": "gemini"},
            ]
        }
    }
    _, errors = SettingsLayers(file=bad).build({})
    [error] = errors
    assert "routing.arms[1].name 'a' is used by more than one arm" in error
    assert "routing.arms[1].provider must be one of openai, ollama, anthropic" in error
    assert "at least one arm needs a weight above 0" in error


def test_an_arms_own_key_variable_wins_over_the_common_one() -> None:
    from ocaml_ai_ls.config import ModelSettings, api_key

    env = {"OCAML_AI_API_KEY": "common", "ANTHROPIC_API_KEY": "own"}
    assert api_key(ModelSettings(api_key_env="ANTHROPIC_API_KEY"), env) == "own"
    assert api_key(ModelSettings(), env) == "common"
    assert api_key(ModelSettings(api_key_env="MISSING"), env) == "common"
