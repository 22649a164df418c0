"""A large OCaml workspace made from the fixture projects, for the scale benchmarks.

Each copy renames every module, library and top-level name (`Vec` ->
`Vec_c7`, `area` -> `area_c7`), so no two copies share a chunk of text (the
index's content-hash cache cannot make the copies free) while names still
resolve inside each copy as they do in the original.
"""

from __future__ import annotations

import functools
import re
import shutil
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "projects"
PROJECTS = ("wrapped", "functors", "opens")
_DEFINED = re.compile(
    r"\b(?:let|and|val|type|external|method)\s+(?:rec\s+|nonrec\s+|mutable\s+)?"
    r"(?:'[a-z]+\s+|\([^)]*\)\s+)?([a-z][A-Za-z0-9_']*)"
)
_FIELD = re.compile(r"^\s*(?:mutable\s+)?([a-z][A-Za-z0-9_']*)\s*:", re.M)
_KEEP = frozenset({"rec", "nonrec", "mutable", "in", "t", "key", "string", "int", "float"})


def _sources(project: Path) -> list[Path]:
    return sorted(
        p
        for p in project.rglob("*")
        if p.is_file() and (p.suffix in (".ml", ".mli") or p.name == "dune")
    )


_DUNE_NAMES = re.compile(r"\((?:name|names|public_name)\s+([a-z_][a-z0-9_ ]*)\)")


def _renamer(project: Path, suffix: str) -> tuple[re.Pattern[str], dict[str, str]]:
    names: set[str] = set()
    for path in _sources(project):
        text = path.read_text("utf-8")
        if path.name == "dune":
            names.update(_DUNE_NAMES.findall(text))
            continue
        stem = path.name.split(".", 1)[0]
        names.add(stem.capitalize())
        names.update(m.group(1) for m in _DEFINED.finditer(text))
        names.update(m.group(1) for m in _FIELD.finditer(text))
        names.update(re.findall(r"\bmodule\s+(?:type\s+)?([A-Z][A-Za-z0-9_']*)", text))
    words = {w for n in names for w in n.split()} - _KEEP
    mapping = {w: f"{w}_{suffix}" for w in words}
    for w in list(words):  # file stems and libraries: lowercase, their modules capitalized
        if w[:1].isupper():
            mapping[w.lower()] = f"{w.lower()}_{suffix}"
        elif w[:1].isalpha():
            mapping.setdefault(w.capitalize(), f"{w.capitalize()}_{suffix}")
    pattern = re.compile(
        r"\b(" + "|".join(sorted(map(re.escape, mapping), key=len, reverse=True)) + r")\b"
    )
    return pattern, mapping


def copy_project(project: Path, dest: Path, suffix: str) -> int:
    """Copy one project with every name suffixed; the number of source lines written."""
    pattern, mapping = _renamer(project, suffix)
    lines = 0
    for path in _sources(project):
        rel = path.relative_to(project)
        stem, dot, ext = rel.name.partition(".")
        name = f"{mapping.get(stem, stem)}{dot}{ext}" if path.name != "dune" else "dune"
        target = dest / rel.parent / name
        target.parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text("utf-8")
        if path.name == "dune":  # only the names in stanzas, never the field keywords
            text = re.sub(
                r"(\((?:name|names|public_name|libraries)\s+)([^()]*)\)",
                lambda m: m.group(1) + pattern.sub(lambda w: mapping[w.group(1)], m.group(2)) + ")",
                text,
            )
        else:
            text = pattern.sub(lambda m: mapping[m.group(1)], text)
        target.write_text(text, "utf-8")
        if path.name != "dune":
            lines += text.count("\n")
    (dest / "dune-project").write_text("(lang dune 2.9)\n", "utf-8")
    return lines


def generate(dest: Path, lines: int = 100_000) -> int:
    """Copies of the fixture projects under `dest` until `lines` source lines; the total."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    (dest / "dune-project").write_text("(lang dune 2.9)\n", "utf-8")
    total = 0
    i = 0
    while total < lines:
        for name in PROJECTS:
            total += copy_project(FIXTURES / name, dest / f"{name}_{i}", f"c{i}")
        i += 1
    return total


def _suffixed(match: re.Match[str], suffix: str) -> str:
    return match.group(1) + suffix


def big_file(lines: int = 5_000) -> str:
    """One `.ml` file of about `lines` lines: the fixtures' items, renamed per copy."""
    source = (FIXTURES / "wrapped" / "lib" / "shape.ml").read_text("utf-8")
    names = sorted({m.group(1) for m in _DEFINED.finditer(source)} - _KEEP, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    parts: list[str] = []
    count = 0
    i = 0
    while count < lines:
        part = pattern.sub(functools.partial(_suffixed, suffix=f"_{i}"), source)
        parts.append(part)
        count += part.count("\n")
        i += 1
    return "".join(parts)
