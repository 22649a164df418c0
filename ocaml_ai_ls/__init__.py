"""ocaml-ai-ls: AI-generated, compiler-checked edits of OCaml code over LSP."""

__version__ = "0.1.0"
