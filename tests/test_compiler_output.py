"""Compiler reports to structured errors: on captured text and on real dune runs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ocaml_ai_ls.verify.compiler_output import parse_compiler_output
from ocaml_ai_ls.verify.result import CheckError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "shapes"

TYPE_ERROR = """\
File "lib/shapes.ml", line 9, characters 24-25:
9 |   | Rect (w, h) -> w *. 2
                            ^
Error: This expression has type int but an expression was expected of type
         float
  Hint: Did you mean `2.'?
"""

MIXED = """\
File "lib/extra.ml", line 7, characters 0-0:
Error: Syntax error: operator expected.
File "lib/extra.ml", lines 2-3, characters 2-15:
2 | ..match x with
3 |   | 0 -> "zero"
Warning 8 [partial-match]: this pattern-matching is not exhaustive.
Here is an example of a case that is not matched:
1
File "_build/default/lib/b.ml", lines 2-3, characters 2-15:
2 | ..match x with
3 |   | 0 -> "zero"
Error (warning 8 [partial-match]): this pattern-matching is not exhaustive.
Here is an example of a case that is not matched:
1
(cd _build/default && /usr/bin/ocamlc.opt -w @1..3@5..28 -g -bin-annot -o lib/b.cmo)
      ocamlc lib/.shapes.objs/byte/shapes.{cmi,cmo,cmt} (exit 2)
File "/shadow/1/bin/main.ml", line 3:
Error: Unbound module Nope
"""


def test_a_type_error_with_its_excerpt_and_hint() -> None:
    assert parse_compiler_output(TYPE_ERROR) == (
        CheckError(
            "lib/shapes.ml",
            9,
            25,
            "This expression has type int but an expression was expected of type float "
            "Hint: Did you mean `2.'?",
            end_line=9,
            end_column=26,
        ),
    )


def test_errors_not_warnings_with_paths_from_the_root() -> None:
    assert parse_compiler_output(MIXED, Path("/shadow/1")) == (
        CheckError("lib/extra.ml", 7, 1, "Syntax error: operator expected.", 7, 1),
        CheckError(
            "lib/b.ml",
            2,
            3,
            "this pattern-matching is not exhaustive. "
            "Here is an example of a case that is not matched: 1",
            end_line=3,  # the end column counts from the start of line 3
            end_column=16,
            severity="warning",  # a warning the build made an error, with its number
            warning=8,
        ),
        CheckError("bin/main.ml", 3, 1, "Unbound module Nope", 3, 0),
    )


def test_text_without_reports_gives_nothing() -> None:
    assert parse_compiler_output("") == ()
    assert parse_compiler_output('Done: 12/12\nFile "x.ml", line 1:\n') == ()


def test_a_real_dune_build_reports_the_type_error(tmp_path: Path) -> None:
    root = tmp_path / "shapes"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("_build"))
    source = root / "lib" / "shapes.ml"
    source.write_text(source.read_text().replace("w *. h", "w *. 2"))
    run = subprocess.run(
        ["dune", "build", "@check", "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode != 0
    [error] = parse_compiler_output(run.stdout + run.stderr, root)
    assert (error.path, error.line) == ("lib/shapes.ml", 9)
    assert error.message.startswith("This expression has type int")
    line = source.read_text().splitlines()[error.line - 1]
    assert line[error.column - 1] == "2"


def test_ocamlfind_on_a_single_file(tmp_path: Path) -> None:
    source = tmp_path / "alone.ml"
    source.write_text('let f (x : int) : string =\n  x + "a"\n')
    run = subprocess.run(
        ["ocamlfind", "ocamlc", "-i", str(source)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert run.returncode != 0
    [error] = parse_compiler_output(run.stdout + run.stderr, tmp_path)
    # `"a"` (column 7 of `  x + "a"`) is a string where an int was expected
    assert (error.path, error.line, error.column) == ("alone.ml", 2, 7)
    assert (error.end_line, error.end_column) == (2, 10)
    assert error.message.startswith("This expression has type string")
