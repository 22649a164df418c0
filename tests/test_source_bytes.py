"""OCaml source is bytes (issue #16 item 8): a legal file that is not UTF-8 (a raw
0xff byte in a string literal) is edited through the real headless `edit`, the real
server and real dune, keeping every byte the edit does not change; and no command
ends in a traceback on bad input (a message on stderr, exit status 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocaml_ai_ls.edits.apply import apply_file_edit
from ocaml_ai_ls.edits.parse import parse_answer
from ocaml_ai_ls.positions import Encoding, LineIndex
from ocaml_ai_ls.source_text import decode, encode, for_display
from tests.editor import server_env
from tests.model_server import ScriptedModel

SEP = "lib/sep.ml"
#: Legal OCaml: a string literal holding the byte 0xff, a comment in Latin-1.
SOURCE = b'(* s\xe9parateur *)\nlet sep = "\xff"\n\nlet join a b = a ^ sep ^ b\n'
JOIN_TWICE = """lib/sep.ml
<<<<<<< SEARCH
let join a b = a ^ sep ^ b
=======
let join a b = a ^ sep ^ b

let join3 a b c = join (join a b) c
>>>>>>> REPLACE
"""


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_come_back_as_they_were(data: bytes) -> None:
    assert encode(decode(data)) == data


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec=None), max_size=50))
def test_any_text_comes_back_as_it_was(text: str) -> None:
    """Lone surrogates an editor may send included."""
    assert decode(encode(text)) == text


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60), st.sampled_from(list(Encoding)))
def test_positions_fall_between_the_characters_the_bytes_decode_to(
    data: bytes, encoding: Encoding
) -> None:
    """A byte that is not UTF-8 is one character to positions as to `decode` (a
    Latin-1 0xa9 looks like a continuation byte: it is not snapped into the previous
    character)."""
    text, index = decode(data), LineIndex(data, encoding)
    for i in range(len(text) + 1):
        offset = len(encode(text[:i]))
        if data[offset - 1 : offset + 1] == b"\r\n":
            continue  # inside a line's end: no position there
        assert index.offset(index.position(offset)) == offset


def test_a_byte_that_is_not_utf8_is_shown_as_the_replacement_character() -> None:
    assert for_display(decode(b'"\xff"')) == '"\ufffd"'


def run(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "ocaml_ai_ls", *args],
        cwd=project,
        env=env,
        capture_output=True,
        timeout=90,
    )


def test_edit_keeps_the_bytes_it_does_not_change(project: Path, model: ScriptedModel) -> None:
    (project / SEP).write_bytes(SOURCE)
    model.enqueue(JOIN_TWICE)
    done = run(project, server_env(model.base_url), "edit", f"{SEP}:4", "add join3", "--apply")
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert b"verification: ok" in done.stderr  # dune built the file, its byte included
    assert (project / SEP).read_bytes() == SOURCE + b"\nlet join3 a b c = join (join a b) c\n"
    # the diff on stdout, its context lines byte for byte (as `git diff` prints them)
    assert b' let sep = "\xff"\n' in done.stdout
    assert b"+let join3 a b c = join (join a b) c\n" in done.stdout
    # the model saw the byte as U+FFFD in valid JSON
    prompt = model.requests[0]["messages"][-1]["content"]
    assert 'let sep = "\ufffd"' in prompt


def test_a_line_with_the_byte_is_edited_with_its_byte(project: Path, model: ScriptedModel) -> None:
    """The model copies the line with U+FFFD where the byte is: the byte goes back."""
    (project / SEP).write_bytes(SOURCE)
    model.enqueue(
        f'{SEP}\n<<<<<<< SEARCH\nlet sep = "\ufffd"\n=======\nlet sep = "\ufffd" ^ " "\n'
        ">>>>>>> REPLACE\n"
    )
    done = run(project, server_env(model.base_url), "edit", f"{SEP}:2", "pad it", "--apply")
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert (project / SEP).read_bytes() == SOURCE.replace(b'"\xff"\n', b'"\xff" ^ " "\n')


def test_a_replacement_character_that_cannot_be_told_is_refused(
    project: Path, model: ScriptedModel
) -> None:
    """Two U+FFFD for one byte: writing them would put characters where a byte was."""
    (project / SEP).write_bytes(SOURCE)
    model.enqueue(
        f'{SEP}\n<<<<<<< SEARCH\nlet sep = "\ufffd"\n=======\nlet sep = "\ufffd\ufffd"\n'
        ">>>>>>> REPLACE\n"
    )
    done = run(project, server_env(model.base_url), "edit", f"{SEP}:2", "double it", "--apply")
    assert done.returncode == 1, done.stderr
    assert b"Traceback" not in done.stderr and b"U+FFFD" in done.stderr
    assert (project / SEP).read_bytes() == SOURCE


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # a changed line that copies the byte gets it back; the comment's byte is kept
        ('let sep = "\ufffd"', 'let sep = "\ufffd" ^ "-"', b'let sep = "\xff" ^ "-"\n'),
        # both lines changed, each U+FFFD back in order
        (
            '(* s\ufffdparateur *)\nlet sep = "\ufffd"',
            '(* le s\ufffdparateur *)\nlet sep = "\ufffd"',
            b'(* le s\xe9parateur *)\nlet sep = "\xff"\n',
        ),
        # one more U+FFFD than bytes replaced, or one where there was none: refused
        ('let sep = "\ufffd"', 'let sep = "\ufffd\ufffd"', None),
        ("let join a b = a ^ sep ^ b", 'let join a b = a ^ "\ufffd" ^ b', None),
    ],
)
def test_the_applier_puts_the_bytes_back(old: str, new: str, expected: bytes | None) -> None:
    answer = f"{SEP}\n<<<<<<< SEARCH\n{old}\n=======\n{new}\n>>>>>>> REPLACE\n"
    result = apply_file_edit(decode(SOURCE), parse_answer(answer).edits[0])
    if expected is None:
        assert result.text is None and "U+FFFD" in result.failures[0].reason
    else:
        assert result.text is not None
        assert expected in encode(result.text)
        assert len(encode(result.text).splitlines()) == len(SOURCE.splitlines())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["edit", "nowhere.ml:1", "x"], "nowhere.ml is not a file"),
        (["edit", "lib", "x"], "lib is not a file"),
        (["eval", "bad.jsonl"], "not JSON"),
        (["eval", "garbage.bin"], "garbage.bin"),
        (["eval", "lib"], "lib"),
        (["eval-import", "multiple", "garbage.bin", "--out-dir", "out"], "garbage.bin"),
        (["ces", "check", "--root", ".", "lib"], "cannot read lib"),
        (["serve", "--log-file", "nowhere/server.log"], "nowhere/server.log"),
        (["serve", "--log-file", "lib"], "Is a directory"),
        (["recover", "--root", "garbage.bin"], "not a directory"),
        (["snapshot", "log", "--root", "garbage.bin"], "not a directory"),
    ],
)
def test_bad_input_is_a_message_and_exit_2(project: Path, args: list[str], message: str) -> None:
    (project / "bad.jsonl").write_text('{"id": 1,\n')
    (project / "garbage.bin").write_bytes(bytes(range(256)) * 3)
    done = run(project, server_env("http://127.0.0.1:9/v1"), *args)
    err = done.stderr.decode(errors="replace")
    assert done.returncode == 2, err
    assert "Traceback" not in err and message in err, err


def test_a_settings_file_that_is_binary_garbage_is_a_message(project: Path) -> None:
    (project / ".ocaml-ai.toml").write_bytes(bytes(range(256)))
    for args in (["edit", "lib/shapes.ml:1", "x"], ["context", "lib/shapes.ml:1"]):
        done = run(project, server_env("http://127.0.0.1:9/v1"), *args)
        err = done.stderr.decode(errors="replace")
        assert done.returncode == 2 and ".ocaml-ai.toml" in err, err
        assert "Traceback" not in err


def test_ces_check_takes_a_diff_with_the_bytes_themselves(project: Path, tmp_path: Path) -> None:
    """A diff as `git diff` (and `edit`) prints it, the byte in a context line."""
    (project / SEP).write_bytes(SOURCE)
    diff = (
        b"--- a/lib/sep.ml\n+++ b/lib/sep.ml\n@@ -2,3 +2,5 @@\n"
        b' let sep = "\xff"\n \n let join a b = a ^ sep ^ b\n'
        b"+\n+let join3 a b c = join (join a b) c\n"
    )
    (project / "change.diff").write_bytes(diff)
    env = server_env("http://127.0.0.1:9/v1", XDG_CACHE_HOME=str(tmp_path / "cache"))
    for args, stdin in ((["change.diff"], None), (["-"], diff)):
        done = subprocess.run(
            [sys.executable, "-m", "ocaml_ai_ls", "ces", "check", "--root", ".", *args],
            cwd=project,
            env=env,
            input=stdin,
            capture_output=True,
            timeout=90,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert b'"status": "ok"' in done.stdout
    assert (project / SEP).read_bytes() == SOURCE  # ces only reads the project
