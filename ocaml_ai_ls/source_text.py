"""OCaml source is bytes: its text for Python, with every byte kept.

OCaml reads a source file as bytes, so a legal file may hold bytes that are not
UTF-8 (a raw `"\\xff"` in a string literal, a Latin-1 comment). Such a byte decodes
to a lone surrogate (U+DC80..U+DCFF, as Python's `surrogateescape`) and encodes back
to itself, so a file read, edited elsewhere and written keeps every byte the edit
did not change. The other lone surrogates (an editor may send one) go through
UTF-8's three-byte form both ways (as `surrogatepass`): bytes → text → bytes and
text → bytes → text both give back what they started from.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import Any

#: The codec error handler that does both; registered when this module is imported.
ERRORS = "ocaml-ai-bytes"
_ESCAPED = range(0xDC80, 0xDD00)
_REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")


def _keep_bytes(exc: UnicodeError) -> tuple[str | bytes, int]:
    if isinstance(exc, UnicodeDecodeError):
        data, at = exc.object, exc.start
        if (  # a surrogate outside the escapes' range, in UTF-8's three-byte form
            data[at] == 0xED
            and at + 2 < len(data)
            and 0xA0 <= data[at + 1] <= 0xBF
            and data[at + 1] not in (0xB2, 0xB3)  # U+DC80..U+DCFF: escaped bytes
            and 0x80 <= data[at + 2] <= 0xBF
        ):
            code = 0xD000 | (data[at + 1] & 0x3F) << 6 | data[at + 2] & 0x3F
            return chr(code), at + 3
        return chr(0xDC00 + data[at]), at + 1
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    out = bytearray()
    for ch in exc.object[exc.start : exc.end]:
        code = ord(ch)
        if code in _ESCAPED:
            out.append(code - 0xDC00)
        elif 0xD800 <= code <= 0xDFFF:
            out += bytes([0xE0 | code >> 12, 0x80 | (code >> 6) & 0x3F, 0x80 | code & 0x3F])
        else:  # pragma: no cover - the codec only calls us for surrogates
            raise exc
    return bytes(out), exc.end


codecs.register_error(ERRORS, _keep_bytes)


def decode(data: bytes) -> str:
    """The text of source bytes; never fails, and `encode` gives the bytes back."""
    return data.decode("utf-8", ERRORS)


def encode(text: str) -> bytes:
    """UTF-8, every byte `decode` escaped written back as it was."""
    return text.encode("utf-8", ERRORS)


def read_source(path: Path) -> str:
    """A source file's text (OSError when it cannot be read; never a decoding error)."""
    return decode(path.read_bytes())


def write_source(path: Path, text: str) -> None:
    path.write_bytes(encode(text))


def for_display(text: str) -> str:
    """The text with the bytes that are not UTF-8 shown as U+FFFD, for what leaves the
    program as Unicode (a model's prompt, a terminal): a lone surrogate cannot."""
    return _SURROGATE.sub(_REPLACEMENT, text)


def displayable(value: Any) -> Any:
    """`for_display` on every string inside JSON-like data (dicts, lists)."""
    if isinstance(value, str):
        return for_display(value)
    if isinstance(value, dict):
        return {k: displayable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [displayable(v) for v in value]
    return value
