"""Words of an instruction, and how much a name shares with them.

"Catch all the possible exceptions during unlinking" should point at
`Lwt_unix.unlink` and `Lwt.catch`; "add bind_error to Lwt_result" at
`Lwt_result` and `bind`. Names and words are cut at `_`, `.`, case changes
and digits, lower-cased and stemmed a little ("unlinking" → "unlink",
"exceptions" → "exception"), and common English words are left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

#: English words too common to look up as names (data, one per line).
STOPWORDS = frozenset(
    line.strip()
    for line in (Path(__file__).with_name("stopwords.txt")).read_text("utf-8").splitlines()
    if line.strip() and not line.startswith("#")
)
#: Identifiers of an instruction, maybe qualified (`IS.of_list`, `Lwt.Infix.( >>= )`).
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_']*(?:\.[A-Za-z_][A-Za-z0-9_']*)*")
_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SUFFIXES = ("ing", "ed", "es", "s")


def stem(word: str) -> str:
    """A crude stem, enough to meet a name halfway: `unlinking`, `unlinks` → `unlink`."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if len(word) > 3 and word[-1] == word[-2]:  # "mapped" → "mapp" → "map"
        word = word[:-1]
    return word


@lru_cache(maxsize=65536)
def name_parts(name: str) -> frozenset[str]:
    """The stemmed parts of a name: `bind_error` → {bind, error}, `CCHash64` → {cc, hash}."""
    return frozenset(stem(p.lower()) for p in _PARTS.findall(name) if len(p) > 1 and p.isalpha())


@dataclass(frozen=True)
class Words:
    """What an instruction talks about."""

    #: Identifiers as written (`Lwt.all`, `bind_error`, `Lwt_result`), stopwords left out.
    identifiers: tuple[str, ...]
    #: Their stemmed parts, lower-case.
    parts: frozenset[str]

    @classmethod
    def of(cls, instruction: str) -> Words:
        identifiers: list[str] = []
        parts: set[str] = set()
        for word in dict.fromkeys(IDENTIFIER.findall(instruction)):
            if "." not in word and (len(word) < 3 or word.lower() in STOPWORDS):
                continue
            identifiers.append(word)
            for piece in word.split("."):
                parts.update(p for p in name_parts(piece) if p not in STOPWORDS)
        return cls(tuple(identifiers), frozenset(parts))

    def names(self) -> set[str]:
        """Every component of every identifier (`Lwt`, `all` of `Lwt.all`)."""
        return {piece for word in self.identifiers for piece in word.split(".")}

    def overlap(self, name: str) -> float:
        """The share of a name's parts that the instruction mentions (0..1)."""
        parts = name_parts(name)
        if not parts or not self.parts:
            return 0.0
        return len(parts & self.parts) / len(parts)
