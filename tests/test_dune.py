"""dune files: stanzas, comments, strings and bad input (`ocaml_ai_ls.context.dune`)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocaml_ai_ls.context.dune import (
    DuneFile,
    DuneSyntaxError,
    SList,
    Stanza,
    module_name,
    parse_sexps,
    read_dune,
)

PROJECT = r"""; the geometry library
(library
 (name geo)
 (public_name my-pkg.geo)
 (wrapped false)
 (libraries str (re_export base) (select impl.ml from (unix -> impl.unix.ml) (-> impl.none.ml)))
 (modules shape vec_util))

(executables
 (names main tool)
 (libraries geo))

(executable (name single) (public_name single-exe))

(test
 (name test_geo)
 (libraries geo alcotest))

(tests (names t1 t2))

(rule (targets gen.ml) (action (run ./gen.exe)))
"""


def test_stanzas_of_a_project_dune_file() -> None:
    dune = read_dune("src/geo", PROJECT)
    assert dune == DuneFile(
        "src/geo",
        (
            Stanza(
                kind="library",
                dir="src/geo",
                names=("geo",),
                public_name="my-pkg.geo",
                wrapped=False,
                libraries=("str", "base"),
                modules=frozenset({"Shape", "Vec_util"}),
                start_line=1,
                end_line=6,
            ),
            Stanza(
                kind="executable",
                dir="src/geo",
                names=("main", "tool"),
                public_name=None,
                wrapped=True,
                libraries=("geo",),
                modules=None,
                start_line=8,
                end_line=10,
            ),
            Stanza(
                kind="executable",
                dir="src/geo",
                names=("single",),
                public_name="single-exe",
                wrapped=True,
                libraries=(),
                modules=None,
                start_line=12,
                end_line=12,
            ),
            Stanza(
                kind="test",
                dir="src/geo",
                names=("test_geo",),
                public_name=None,
                wrapped=True,
                libraries=("geo", "alcotest"),
                modules=None,
                start_line=14,
                end_line=16,
            ),
            Stanza(
                kind="test",
                dir="src/geo",
                names=("t1", "t2"),
                public_name=None,
                wrapped=True,
                libraries=(),
                modules=None,
                start_line=18,
                end_line=18,
            ),
        ),
        include_subdirs=False,
    )


def test_stanza_properties_and_wrapper() -> None:
    library, executables, *_ = read_dune("src/geo", PROJECT).stanzas
    assert (library.name, library.is_library, library.wrapper) == ("geo", True, "Geo")
    assert (executables.name, executables.is_library, executables.wrapper) == (
        "main",
        False,
        "Main",
    )
    nameless = read_dune("", "(library (public_name x))").stanzas[0]
    assert (nameless.names, nameless.name, nameless.wrapper) == ((), "", "")


def test_wrapped_is_true_unless_false() -> None:
    def wrapped(field: str) -> bool:
        return read_dune("", f"(library (name a) {field})").stanzas[0].wrapped

    assert wrapped("") is True
    assert wrapped("(wrapped true)") is True
    assert wrapped("(wrapped false)") is False
    assert wrapped('(wrapped (transition "use A.B"))') is True


def test_modules_field_only_for_plain_lists() -> None:
    def modules(field: str) -> frozenset[str] | None:
        return read_dune("", f"(library (name a) {field})").stanzas[0].modules

    assert modules("") is None
    assert modules("(modules)") == frozenset()
    assert modules("(modules foo Bar baz_qux)") == frozenset({"Foo", "Bar", "Baz_qux"})
    assert modules(r"(modules :standard \ main)") is None
    assert modules(r"(modules (:standard \ main))") is None
    assert modules("(modules %{read-lines:mods})") is None


def test_libraries_skip_variables_and_select() -> None:
    stanza = read_dune(
        "",
        "(executable (name m) (libraries a %{lib:x} :dep (re_export b c) "
        "(select f.ml from (d -> f.d.ml) (-> f.none.ml)) e))",
    ).stanzas[0]
    assert stanza.libraries == ("a", "b", "c", "e")


def test_names_wins_over_name() -> None:
    stanza = read_dune("", "(executables (name ignored) (names first second))").stanzas[0]
    assert stanza.names == ("first", "second")


@pytest.mark.parametrize(
    ("stem", "module"),
    [
        ("foo_bar", "Foo_bar"),
        ("geo", "Geo"),
        ("Already", "Already"),
        ("x", "X"),
        ("_private", "_private"),
        ("", ""),
    ],
)
def test_module_name(stem: str, module: str) -> None:
    assert module_name(stem) == module


def test_include_subdirs() -> None:
    assert read_dune("lib", "(include_subdirs unqualified)").include_subdirs is True
    assert read_dune("lib", "(include_subdirs qualified)").include_subdirs is True
    assert read_dune("lib", "(include_subdirs no)").include_subdirs is False
    assert read_dune("lib", "(include_subdirs)").include_subdirs is False
    assert read_dune("lib", "(library (name a))").include_subdirs is False
    both = read_dune("lib", "(include_subdirs unqualified)\n(library (name a))\n")
    assert both.include_subdirs is True
    assert [(s.name, s.start_line) for s in both.stanzas] == [("a", 1)]


# --------------------------------------------------------------------------- comments


def test_line_block_and_datum_comments_are_skipped() -> None:
    text = """\
; (library (name in_line_comment))
(library ; a comment after the head
 (name kept) ; trailing (parens) "and quotes
 #| block (library (name in_block)) "
    spanning lines |#
 (libraries #;skipped_atom a #;(skipped list) b #;"skipped string" c))
#;(library (name datum_commented))
#;
(library
  (name commented_on_the_next_line))
#| (executable (name in_block)) |#
(executable (name after))
"""
    dune = read_dune("d", text)
    assert [(s.kind, s.names, s.libraries, s.start_line, s.end_line) for s in dune.stanzas] == [
        ("library", ("kept",), ("a", "b", "c"), 1, 5),
        ("executable", ("after",), (), 11, 11),
    ]


def test_datum_comment_inside_a_list_drops_one_item() -> None:
    assert parse_sexps("(a #; b c) #;(x) (y #;(z w) v)") == [
        SList(("a", "c"), 0, 0),
        SList(("y", "v"), 0, 0),
    ]


def test_comment_markers_inside_an_atom_are_part_of_it() -> None:
    assert parse_sexps("(a#b c#|d)") == [SList(("a#b", "c#|d"), 0, 0)]


# --------------------------------------------------------------------------- strings


def test_quoted_strings_keep_spaces_parentheses_and_escaped_quotes() -> None:
    parsed = parse_sexps(r'(a "b c" "d\"e" "f\\g" "(h)" ";not a comment" "#;kept" "")')
    assert parsed == [
        SList(("a", "b c", 'd"e', "f\\g", "(h)", ";not a comment", "#;kept", ""), 0, 0)
    ]


def test_quoted_names_in_stanzas() -> None:
    stanza = read_dune("", '(executable (name "my main") (libraries "a b" "(c)"))').stanzas[0]
    assert stanza.names == ("my main",)
    assert stanza.libraries == ("a b", "(c)")


def test_a_multi_line_string_counts_its_lines() -> None:
    text = '(rule\n (action (echo "one\ntwo\nthree")))\n(library\n (name after))\n'
    assert parse_sexps(text)[0] == SList(
        ("rule", SList(("action", SList(("echo", "one\ntwo\nthree"), 1, 3)), 1, 3)), 0, 3
    )
    assert [(s.name, s.start_line, s.end_line) for s in read_dune("", text).stanzas] == [
        ("after", 4, 5)
    ]


@pytest.mark.xfail(
    strict=True,
    reason=r"string escapes are not decoded: `\n`, `\t` become the letters n, t",
)
def test_string_escapes_are_decoded_as_dune_does() -> None:
    assert parse_sexps(r'("a\nb" "c\td" "\065")') == [SList(("a\nb", "c\td", "A"), 0, 0)]


# --------------------------------------------------------------------------- lines


def test_start_and_end_lines_are_zero_based_and_inclusive() -> None:
    text = "\n\n(library\n (name a)\n\n)\n(library (name b))"
    dune = read_dune("", text)
    assert [(s.name, s.start_line, s.end_line) for s in dune.stanzas] == [("a", 2, 5), ("b", 6, 6)]


def test_crlf_line_endings() -> None:
    text = "(library\r\n (name a))\r\n(executable\r\n (name b))\r\n"
    dune = read_dune("", text)
    assert [(s.name, s.start_line, s.end_line) for s in dune.stanzas] == [("a", 0, 1), ("b", 2, 3)]


# --------------------------------------------------------------------------- bad input


def test_empty_and_comment_only_files_have_no_stanzas() -> None:
    assert read_dune("x", "") == DuneFile("x", (), False)
    assert read_dune("x", "  \n\t\n") == DuneFile("x", (), False)
    assert read_dune("x", "; only\n#| a comment |#\n#;(library (name z))\n") == DuneFile(
        "x", (), False
    )


def test_stray_atoms_and_unknown_stanzas_are_ignored() -> None:
    dune = read_dune("x", '(lang dune 3.0) atom "str" () (()) ((library)) (library (name ok))')
    assert [s.name for s in dune.stanzas] == ["ok"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(library (name a)", "unbalanced `(`"),
        ("(library (name a)))", "line 1: unbalanced `)`"),
        (")", "line 1: unbalanced `)`"),
        ('(library\n (name "a))\n', "line 3: unterminated string"),
        ('"abc\\', "line 1: unterminated string"),
        ("(library)\n#| never closed", "line 2: unterminated #| comment"),
    ],
)
def test_malformed_files_raise_dune_syntax_error(text: str, message: str) -> None:
    with pytest.raises(DuneSyntaxError) as raised:
        read_dune("x", text)
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)


def test_binary_garbage() -> None:
    garbage = bytes(range(256)).decode("latin-1") * 3
    with pytest.raises(DuneSyntaxError):
        read_dune("x", garbage)
    no_delimiters = "".join(chr(c) for c in range(256) if chr(c) not in '()";#|')
    assert read_dune("x", no_delimiters) == DuneFile("x", (), False)


DUNE_ALPHABET = st.sampled_from([*'()";#|\\ \n\tabl:%{}', "library", "name", "\r\n"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.lists(DUNE_ALPHABET, max_size=60).map("".join)))
def test_arbitrary_text_only_ever_raises_dune_syntax_error(text: str) -> None:
    try:
        dune = read_dune("d", text)
    except DuneSyntaxError:
        return
    assert isinstance(dune, DuneFile)
    for stanza in dune.stanzas:
        assert 0 <= stanza.start_line <= stanza.end_line <= text.count("\n")
