"""WorkspaceEdits: minimal, versioned, creating files, in the client's encoding."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from lsprotocol import types

from ocaml_ai_ls.edits.workspace_edit import (
    EditUnsupported,
    FileChange,
    build_workspace_edit,
    text_edits,
    unified_diff,
)
from ocaml_ai_ls.positions import Encoding, LineIndex, encode


def apply_edits(old: str, edits: list[types.TextEdit], enc: Encoding) -> str:
    data = encode(old)
    index = LineIndex(data, enc)
    spans = sorted(
        (index.offset(e.range.start), index.offset(e.range.end), e.new_text) for e in edits
    )
    for start, end, new in reversed(spans):
        data = data[:start] + encode(new) + data[end:]
    return data.decode()


OLD = "".join(f"let v{i} = {i}\n" for i in range(200))


@pytest.mark.parametrize(
    "new",
    [
        OLD.replace("let v50 = 50\n", "let v50 = 500\n"),
        OLD.replace("let v10 = 10\n", "").replace("let v150 = 150\n", "let v150 = 1\nlet w = 2\n"),
        OLD + "let tail = 0",
        "let only = 1\n",
        "",
    ],
)
@pytest.mark.parametrize("enc", list(Encoding))
def test_text_edits_turn_old_into_new(new: str, enc: Encoding) -> None:
    edits = text_edits(OLD, new, enc)
    assert apply_edits(OLD, edits, enc) == new


def test_text_edits_are_minimal() -> None:
    new = OLD.replace("let v50 = 50\n", "let v50 = 500\n")
    edits = text_edits(OLD, new, Encoding.UTF16)
    assert len(edits) == 1
    assert edits[0].range.start.line == 50 and edits[0].range.end.line == 51


def test_edit_at_end_without_final_newline_uses_encoded_column() -> None:
    old = 'let s = "😀"'
    edits = text_edits(old, old + "\nlet t = 1\n", Encoding.UTF16)
    assert apply_edits(old, edits, Encoding.UTF16) == old + "\nlet t = 1\n"


def test_versioned_documents_and_created_files() -> None:
    changes = [
        FileChange(Path("/r/a.ml"), "a.ml", "file:///r/a.ml", "let a = 1\n", "let a = 2\n", 4),
        FileChange(Path("/r/b.ml"), "b.ml", "file:///r/b.ml", "let b = 1\n", "let b = 2\n", None),
        FileChange(Path("/r/c.ml"), "c.ml", "file:///r/c.ml", None, "let c = 1\n", None),
    ]
    edit = build_workspace_edit(changes, Encoding.UTF16)
    ops = edit.document_changes
    assert ops is not None and len(ops) == 4
    assert isinstance(ops[0], types.TextDocumentEdit) and ops[0].text_document.version == 4
    assert isinstance(ops[1], types.TextDocumentEdit) and ops[1].text_document.version is None
    assert isinstance(ops[2], types.CreateFile) and ops[2].uri == "file:///r/c.ml"
    assert isinstance(ops[3], types.TextDocumentEdit)
    assert isinstance(ops[3].edits[0], types.TextEdit) and ops[3].edits[0].new_text == "let c = 1\n"
    plain = build_workspace_edit(changes[:2], Encoding.UTF16, document_changes=False)
    assert plain.changes is not None and set(plain.changes) == {"file:///r/a.ml", "file:///r/b.ml"}
    with pytest.raises(EditUnsupported):
        build_workspace_edit(changes, Encoding.UTF16, document_changes=False)
    with pytest.raises(EditUnsupported):
        build_workspace_edit(changes, Encoding.UTF16, create_files=False)


def test_unified_diff_applies_with_git(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    old = "let a = 1\nlet b = 2"
    (tmp_path / "lib" / "a.ml").write_text(old)
    changes = [
        FileChange(tmp_path / "lib/a.ml", "lib/a.ml", "", old, "let a = 1\nlet b = 3\n"),
        FileChange(tmp_path / "lib/n.ml", "lib/n.ml", "", None, "let n = 0\n"),
    ]
    diff = unified_diff(changes)
    assert "--- /dev/null" in diff and "\\ No newline at end of file" in diff
    subprocess.run(["git", "apply", "-"], input=diff.encode(), cwd=tmp_path, check=True)
    assert (tmp_path / "lib" / "a.ml").read_text() == "let a = 1\nlet b = 3\n"
    assert (tmp_path / "lib" / "n.ml").read_text() == "let n = 0\n"
