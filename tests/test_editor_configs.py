"""The configuration-only clients name the server and the languages as their
editors expect (Helix's languages.toml is TOML with these keys)."""

from __future__ import annotations

import tomllib
from pathlib import Path

CLIENTS = Path(__file__).resolve().parent.parent / "clients"


def test_helix_runs_the_server_beside_ocamllsp_for_both_languages() -> None:
    config = tomllib.loads((CLIENTS / "helix" / "languages.toml").read_text())
    assert config["language-server"]["ocaml-ai-ls"]["command"] == "ocaml-ai-ls"
    by_name = {lang["name"]: lang for lang in config["language"]}
    assert set(by_name) == {"ocaml", "ocaml-interface"}
    for lang in by_name.values():
        assert lang["language-servers"] == ["ocamllsp", "ocaml-ai-ls"]


def test_kakoune_lists_both_servers_for_ocaml_buffers() -> None:
    text = (CLIENTS / "kakoune" / "ocaml-ai.kak").read_text()
    assert "filetype=ocaml" in text and "[ocamllsp]" in text and "[ocaml-ai-ls]" in text


def test_every_client_in_the_index_exists() -> None:
    index = (CLIENTS / "README.md").read_text()
    for name in ("vscode", "neovim", "emacs", "helix", "kakoune"):
        assert f"({name}/" in index
        assert (CLIENTS / name).is_dir()
