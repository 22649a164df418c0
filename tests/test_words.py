"""Words of an instruction and the parts of names (`ocaml_ai_ls.context.words`)."""

from __future__ import annotations

import pytest

from ocaml_ai_ls.context.words import Words, name_parts, stem


@pytest.mark.parametrize(
    ("word", "stemmed"),
    [
        ("unlinking", "unlink"),
        ("unlinks", "unlink"),
        ("exceptions", "exception"),
        ("mapped", "map"),
        ("bind", "bind"),
        ("is", "is"),  # too short to cut
        ("uses", "use"),  # "-es" would leave too little
    ],
)
def test_stem(word: str, stemmed: str) -> None:
    assert stem(word) == stemmed


def test_name_parts_cut_at_underscores_case_and_digits() -> None:
    assert name_parts("bind_error") == {"bind", "error"}
    assert name_parts("CCHash64") == {"cc", "hash"}
    assert name_parts("Lwt_unix") == {"lwt", "unix"}
    assert name_parts("of_int64_trunc") == {"of", "int", "trunc"}
    assert name_parts("x") == frozenset()


def test_an_instruction_keeps_names_and_drops_stopwords() -> None:
    w = Words.of("Add bind_error to Lwt_result (#943), and use Lwt.all in the loop")
    assert w.identifiers == ("bind_error", "Lwt_result", "Lwt.all", "loop")
    assert {"bind", "error", "lwt", "result", "loop"} <= w.parts
    assert "the" not in w.parts and "and" not in w.parts
    assert w.names() == {"bind_error", "Lwt_result", "Lwt", "all", "loop"}


def test_overlap_is_the_share_of_a_name_the_instruction_mentions() -> None:
    w = Words.of("Catch all the possible exceptions during unlinking")
    assert w.overlap("unlink") == 1.0
    assert w.overlap("unlink_file") == 0.5
    assert w.overlap("chmod") == 0.0
    assert Words.of("").overlap("unlink") == 0.0


def test_an_empty_instruction_names_nothing() -> None:
    w = Words.of("")
    assert (w.identifiers, w.parts, w.names()) == ((), frozenset(), set())
