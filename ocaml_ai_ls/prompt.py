"""Turn a context slice and an instruction into chat messages.

The model is asked for SEARCH/REPLACE blocks (see DESIGN.md: no line numbers
to get wrong); the parser accepts unified diffs and whole files as well.
"""

from __future__ import annotations

from .context.slicer import Context, Excerpt
from .providers.base import ChatMessage

SYSTEM_PROMPT = """\
You are an expert OCaml programmer editing a dune project. You are shown \
excerpts of the project's files and an instruction. Make the smallest change \
that carries out the instruction and still compiles.

Write every change as a SEARCH/REPLACE block:

path/to/file.ml
<<<<<<< SEARCH
lines copied exactly from the current file
=======
the lines that replace them
>>>>>>> REPLACE

Rules:
- The path line is the file's path relative to the project root, exactly as \
in the excerpt headers.
- SEARCH must match the current lines exactly, whitespace included, and only \
one place in the file. Prefer replacing whole top-level items (a whole `let`, \
`type` or `module`) over single lines.
- Never copy the line-number prefixes (like "  12| ") into a block.
- To create a file, give its path and an empty SEARCH section.
- When a change needs other files to change too (the .mli, callers), include \
blocks for them.
- Keep the existing style and indentation; do not touch unrelated code.
- Before the blocks, write at most one sentence saying what you changed."""


def _numbered(excerpt: Excerpt) -> str:
    width = max(4, len(str(excerpt.last_line)))
    return "\n".join(
        f"{n:>{width}}| {line}" for n, line in enumerate(excerpt.lines, excerpt.first_line)
    )


def _header(excerpt: Excerpt) -> str:
    span = (
        f"lines {excerpt.first_line}-{excerpt.last_line} of {excerpt.total_lines}"
        if excerpt.lines and (excerpt.first_line > 1 or excerpt.last_line < excerpt.total_lines)
        else f"{excerpt.total_lines} lines"
    )
    return f"### {excerpt.rel} ({excerpt.role}, {span})"


def render_context(context: Context) -> str:
    parts: list[str] = []
    for excerpt in context.excerpts:
        body = _numbered(excerpt) if excerpt.numbered else "\n".join(excerpt.lines)
        parts.append(f"{_header(excerpt)}\n```ocaml\n{body}\n```")
    if context.target is not None:
        t = context.target
        what = f"`{t.name}` ({t.kind})" if t.name else t.kind
        parts.append(
            f"### Target: {what}, lines {t.start_line}-{t.end_line} of {t.rel}\n"
            f"```ocaml\n{t.text}\n```"
        )
    return "\n\n".join(parts)


def build_messages(context: Context, instruction: str) -> list[ChatMessage]:
    where = (
        f" It is about the target item in {context.target.rel}."
        if context.target is not None
        else f" It is about {context.rel}."
    )
    user = f"{render_context(context)}\n\n### Instruction\n{instruction.strip()}\n\n{where.strip()}"
    return [ChatMessage("system", SYSTEM_PROMPT), ChatMessage("user", user)]
