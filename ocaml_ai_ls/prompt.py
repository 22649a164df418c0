"""Turn a context slice and an instruction into chat messages.

By default the model is asked for SEARCH/REPLACE blocks (see DESIGN.md: no line
numbers to get wrong); the prompt strategy (`model.strategy`, per A/B arm) may
ask for a unified diff or whole files instead. The parser reads all three.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .context.model import Context
from .context.render import render_blocks
from .providers.base import ChatMessage
from .verify.result import PARSE_ERROR, WARNING, CheckError

_INTRO = """\
You are an expert OCaml programmer editing a dune project. You are shown \
excerpts of the project's files and an instruction. Make the smallest change \
that carries out the instruction and still compiles."""

_COMMON_RULES = """\
- Never copy the line-number prefixes (like "  12| ") into your answer. A line \
`...` marks lines left out of an excerpt.
- When a change needs other files to change too (the .mli, callers), change \
them as well.
- Keep the existing style and indentation; do not touch unrelated code.
- Before the edit, write at most one sentence saying what you changed."""

#: How each prompt strategy (`model.strategy`) asks for the edit; the parser reads all.
FORMATS = {
    "search_replace": """\
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
`type` or `module`) over single lines. SEARCH only lines you were shown.
- To create a file, give its path and an empty SEARCH section.""",
    "unified_diff": """\
Write the change as a unified diff against the files as shown:

--- a/path/to/file.ml
+++ b/path/to/file.ml
@@ -12,3 +12,4 @@
 an unchanged line
-a removed line
+an added line

Rules:
- Paths are relative to the project root, exactly as in the excerpt headers.
- Give about three unchanged lines of context around each change, copied \
exactly from lines you were shown; the @@ numbers may be approximate.
- To create a file, diff it from /dev/null.""",
    "whole_file": """\
Write every file you change in full, after its path:

path/to/file.ml
```ocaml
the complete new text of the file
```

Rules:
- The path line is the file's path relative to the project root, exactly as \
in the excerpt headers.
- Give every line of the file, changed or not; never abbreviate with `...` \
or a comment such as "rest unchanged". Change only files shown whole.
- To create a file, do the same with its new path.""",
}

#: What a repair round asks for, per strategy.
_AGAIN = {
    "search_replace": "SEARCH/REPLACE blocks whose SEARCH lines are copied exactly from "
    "the files as shown",
    "unified_diff": "a unified diff whose context lines are copied exactly from the files as shown",
    "whole_file": "the whole text of every file you change",
}
_REPAIR_FORMAT = {
    "search_replace": "SEARCH/REPLACE blocks against the files as they are after your change "
    "(or, if simpler, against the original files)",
    "unified_diff": "a unified diff against the files as they are after your change (or, if "
    "simpler, against the original files)",
    "whole_file": "the whole text of every file that must change",
}
DEFAULT_STRATEGY = "search_replace"


def system_prompt(strategy: str = DEFAULT_STRATEGY) -> str:
    """The instructions for one edit format (`model.strategy`)."""
    return f"{_INTRO}\n\n{FORMATS[strategy]}\n{_COMMON_RULES}"


SYSTEM_PROMPT = system_prompt()


def render_context(context: Context) -> str:
    """The excerpts, then which item is the target."""
    parts = [text for _, text in render_blocks(context)]
    if context.target is not None:
        t = context.target
        what = f"`{t.name}` ({t.kind})" if t.name else t.kind
        parts.append(f"### Target: {what}, lines {t.start_line}-{t.end_line} of {t.rel}")
    return "\n\n".join(parts)


def build_messages(
    context: Context, instruction: str, strategy: str = DEFAULT_STRATEGY
) -> list[ChatMessage]:
    where = (
        f" It is about the target item in {context.target.rel}."
        if context.target is not None
        else f" It is about {context.rel}."
    )
    user = f"{render_context(context)}\n\n### Instruction\n{instruction.strip()}\n\n{where.strip()}"
    return [ChatMessage("system", system_prompt(strategy)), ChatMessage("user", user)]


#: Compiler errors shown to the model in a repair round, at most.
REPAIR_ERRORS = 5
#: Lines shown on each side of an error's line.
REPAIR_AROUND = 3


def apply_feedback(reason: str, strategy: str = DEFAULT_STRATEGY) -> str:
    """Why an answer could not be used (no edit, a SEARCH that matched nothing...)."""
    return f"Your answer could not be applied: {reason}\n\nAnswer again with {_AGAIN[strategy]}."


def compile_feedback(
    errors: Sequence[CheckError],
    diff: str,
    texts: Mapping[str, str],
    status: str,
    strategy: str = DEFAULT_STRATEGY,
) -> str:
    """The compiler's errors on a candidate, the code around each, and the candidate's diff.

    `texts` holds the files as the candidate left them (relative path → text).
    """
    what = {
        PARSE_ERROR: "does not parse",
        WARNING: "builds only with warnings, which this project's build treats as errors",
    }.get(status, "does not type-check")
    parts = [f"With your change the project {what}. The compiler says:"]
    new = [e for e in errors if not e.preexisting]
    for error in new[:REPAIR_ERRORS]:
        where = f"{error.path}:{error.line}:{error.column}" if error.path else "(build)"
        parts.append(f"{where}: {error.message}")
        text = texts.get(error.path)
        if text is not None and error.line > 0:
            lines = text.splitlines()
            first = max(1, error.line - REPAIR_AROUND)
            last = min(len(lines), (error.end_line or error.line) + REPAIR_AROUND)
            excerpt = "\n".join(f"{n:>4}| {lines[n - 1]}" for n in range(first, last + 1))
            parts.append(f"```ocaml\n{excerpt}\n```")
    if len(new) > REPAIR_ERRORS:
        parts.append(f"({len(new) - REPAIR_ERRORS} more errors not shown)")
    if len(new) < len(errors):
        old = len(errors) - len(new)
        parts.append(f"({old} other error(s) were in the project before your change.)")
    parts.append(f"Your change so far, as a diff against the original files:\n```diff\n{diff}```")
    parts.append(f"Fix the errors. Answer with {_REPAIR_FORMAT[strategy]}.")
    return "\n\n".join(parts)


def repair_messages(
    messages: Sequence[ChatMessage], answer: str, feedback: str
) -> list[ChatMessage]:
    """The conversation so far, the model's answer, and what went wrong with it."""
    return [*messages, ChatMessage("assistant", answer), ChatMessage("user", feedback)]
