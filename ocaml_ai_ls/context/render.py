"""Rendering: the packed pieces as the numbered file excerpts the model reads, and
the `--explain` view a user reads to see why the model was (not) shown something.
"""

from __future__ import annotations

from .model import DUNE, ROLES, TARGET, Context, Dropped, Piece


def _describe(piece: Piece) -> str:
    """What a piece is, for its file's header: the target and the stanza by their names,
    the others by their role (a header listing fifty entries would say nothing)."""
    return piece.label if piece.rank in (TARGET, DUNE) else ROLES[piece.rank]


def file_block(rel: str, pieces: list[Piece], total: int) -> str:
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
    roles = ", ".join(dict.fromkeys(_describe(p) for p in sorted(pieces, key=lambda p: p.rank)))
    return f"### {rel} ({total} lines; {roles})\n```ocaml\n" + "\n".join(out) + "\n```"


def render_blocks(context: Context) -> list[tuple[str, str]]:
    """One numbered excerpt per file, `(path, text)`, in the order the model reads them:
    files by their best piece's role, the least central first, the file being edited last."""
    by_file: dict[str, list[Piece]] = {}
    for piece in context.pieces:
        by_file.setdefault(piece.rel, []).append(piece)
    order = sorted(
        by_file, key=lambda rel: (rel == context.rel, -min(p.rank for p in by_file[rel]))
    )
    return [(rel, file_block(rel, by_file[rel], context.total_lines.get(rel, 0))) for rel in order]


def _where(piece: Piece) -> str:
    return f"{piece.rel}:{piece.first_line}-{piece.last_line}"


def explain(context: Context, dropped: int = 15) -> str:
    """Each piece with its score and why it was chosen, then the best candidates that
    did not fit and why not."""
    out = [
        f"{context.rel}: {context.tokens} of {context.budget} tokens, {len(context.pieces)} pieces"
    ]
    for p in context.pieces:
        score = "kept always" if p.rank == TARGET else f"score {p.score:.3f}"
        out.append(f"  {score:>12}  {_where(p)}  {p.label} ({p.tokens} tokens)")
        if p.reason:
            out.append(f"{'':>16}{p.reason}")
    best: list[Dropped] = list(context.dropped[:dropped])
    if best:
        out.append(f"best of what did not fit ({len(best)} of {len(context.dropped)}):")
    for d in best:
        p = d.piece
        out.append(f"  {'score ' + format(p.score, '.3f'):>12}  {_where(p)}  {p.label}: {d.why}")
        if p.reason:
            out.append(f"{'':>16}{p.reason}")
    return "\n".join(out)
