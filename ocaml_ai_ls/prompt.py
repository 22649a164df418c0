"""Turn a context slice and an instruction into chat messages.

The model is asked for SEARCH/REPLACE blocks (see DESIGN.md: no line numbers
to get wrong); the parser accepts unified diffs and whole files as well.
"""

from __future__ import annotations

from .context.slicer import DUNE, FILE, INTERFACE, ROLES, TARGET, Context, Piece
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
- Never copy the line-number prefixes (like "  12| ") into a block. A line \
`...` marks lines left out of an excerpt: SEARCH only lines you were shown.
- To create a file, give its path and an empty SEARCH section.
- When a change needs other files to change too (the .mli, callers), include \
blocks for them.
- Keep the existing style and indentation; do not touch unrelated code.
- Before the blocks, write at most one sentence saying what you changed."""


def _file_block(rel: str, pieces: list[Piece], total: int) -> str:
    """One file's pieces merged into one numbered excerpt; skipped lines shown as `...`."""
    lines: dict[int, str] = {}
    for piece in pieces:
        lines.update(zip(piece.numbers, piece.texts, strict=True))
    numbers = sorted(lines)
    width = max(4, len(str(numbers[-1])))
    out: list[str] = []
    previous = 0
    for n in numbers:
        if n > previous + 1:
            out.append(f"{'':>{width}}  ...")
        out.append(f"{n:>{width}}| {lines[n]}")
        previous = n
    if previous < total:
        out.append(f"{'':>{width}}  ...")
    roles = ", ".join(dict.fromkeys(_describe(p) for p in pieces))
    return f"### {rel} ({total} lines; {roles})\n```ocaml\n" + "\n".join(out) + "\n```"


def _describe(piece: Piece) -> str:
    return piece.label if piece.rank in (TARGET, FILE, INTERFACE, DUNE) else ROLES[piece.rank]


def render_context(context: Context) -> str:
    """Files in order of their best piece's rank, the file being edited last."""
    by_file: dict[str, list[Piece]] = {}
    for piece in sorted(context.pieces, key=lambda p: p.rank):
        by_file.setdefault(piece.rel, []).append(piece)
    order = sorted(
        by_file, key=lambda rel: (rel == context.rel, -min(p.rank for p in by_file[rel]))
    )
    parts = [_file_block(rel, by_file[rel], context.total_lines.get(rel, 0)) for rel in order]
    if context.target is not None:
        t = context.target
        what = f"`{t.name}` ({t.kind})" if t.name else t.kind
        parts.append(f"### Target: {what}, lines {t.start_line}-{t.end_line} of {t.rel}")
    return "\n\n".join(parts)


def build_messages(context: Context, instruction: str) -> list[ChatMessage]:
    where = (
        f" It is about the target item in {context.target.rel}."
        if context.target is not None
        else f" It is about {context.rel}."
    )
    user = f"{render_context(context)}\n\n### Instruction\n{instruction.strip()}\n\n{where.strip()}"
    return [ChatMessage("system", SYSTEM_PROMPT), ChatMessage("user", user)]
