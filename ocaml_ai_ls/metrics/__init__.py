"""Local metrics of generations: a SQLite store written off the request path
(`store.py`) and the figures `ocaml-ai-ls stats` prints from it (`stats.py`)."""

from .store import GenerationRecord, MetricsStore, default_db_path, workspace_hash

__all__ = ["GenerationRecord", "MetricsStore", "default_db_path", "workspace_hash"]
