"""The applier: by content, exact at each step, all or nothing."""

from __future__ import annotations

from ocaml_ai_ls.edits.apply import apply_file_edit, apply_hunks
from ocaml_ai_ls.edits.model import FileApplyResult, FileEdit, Hunk
from ocaml_ai_ls.edits.parse import parse_answer

SRC = "let a = 1\n\nmodule M = struct\n  let f x =\n    x + 1\nend\n\nlet g = 2\n"


def test_trailing_whitespace_and_indentation_drift() -> None:
    hunk = Hunk(("let f x =  ", "  x + 1"), ("let f x =", "  x + 2", "  |> succ"))
    result = apply_hunks(SRC, [hunk])
    # the kept line stays as in the file; added lines get the file's indentation
    assert result.text == SRC.replace("    x + 1\n", "    x + 2\n    |> succ\n")


def test_ambiguous_hunk_is_refused_with_places() -> None:
    src = "let x = 1\nend\n\nlet y = 2\nend\n\n"
    result = apply_hunks(src, [Hunk(("end", ""), ("end", "", "(* c *)"))])
    assert result.text is None and "matches 2 places (lines 2, 5)" in result.failures[0].reason


def test_ambiguity_settled_by_the_drift_of_the_other_hunks() -> None:
    src = "let a = 1\nend\nlet b = 2\nlet c = 3\nend\nlet d = 4\n"
    hunks = [Hunk(("let a = 1",), ("let a = 10",), 10), Hunk(("end",), ("end;;",), 14)]
    result = apply_hunks(src, hunks)  # both hints are 10 too far: the second `end` is meant
    assert result.text == src.replace("let c = 3\nend\n", "let c = 3\nend;;\n").replace(
        "let a = 1", "let a = 10"
    )


def test_not_found_gives_the_closest_lines() -> None:
    result = apply_hunks(SRC, [Hunk(("let g = 3",), ("let g = 4",))])
    assert result.text is None and result.failures[0].closest is not None
    assert "let g = 2" in result.failures[0].closest


def test_all_or_nothing_and_overlap() -> None:
    ok, bad = Hunk(("let a = 1",), ("let a = 2",)), Hunk(("nope",), ("x",))
    result = apply_hunks(SRC, [ok, bad])
    assert result.text is None and result.applied == (0,)
    # two hunks claiming the same line, and no order in which both apply
    overlap = apply_hunks(
        SRC,
        [
            Hunk(("let a = 1", "", "module M = struct"), ("X",)),
            Hunk(("module M = struct", "  let f x ="), ("Y",)),
        ],
    )
    assert overlap.text is None and "overlaps" in overlap.failures[0].reason


def test_sequential_blocks_as_aider_applies_them() -> None:
    hunks = [Hunk(("let a = 1",), ("let a = 1", "let b = 5")), Hunk(("let b = 5",), ("let b = 6",))]
    assert apply_hunks(SRC, hunks).text == SRC.replace("let a = 1\n", "let a = 1\nlet b = 6\n")


def test_crlf_and_missing_final_newline_are_kept() -> None:
    src = "let a = 1\r\nlet b = 2"
    result = apply_hunks(src, [Hunk(("let b = 2",), ("let b = 3", "let c = 4"))])
    assert result.text == "let a = 1\r\nlet b = 3\r\nlet c = 4"


def test_line_number_prefixes_copied_from_the_prompt() -> None:
    hunk = Hunk(("   8| let g = 2",), ("   8| let g = 3",))
    assert apply_hunks(SRC, [hunk]).text == SRC.replace("let g = 2", "let g = 3")


def test_file_edits_create_replace_and_guard_fragments() -> None:
    assert apply_file_edit(None, FileEdit("n.ml", content="let n = 1\n", create=True)).text
    assert apply_file_edit("x", FileEdit("n.ml", content="y\n", create=True)).text is None
    big = "".join(f"let v{i} = {i}\n" for i in range(40))
    fragment = apply_file_edit(big, FileEdit("b.ml", content="let v1 = 100\n"))
    assert fragment.text is None and "fragment" in fragment.failures[0].reason
    assert (
        apply_file_edit(None, FileEdit("n.ml", (Hunk((), ("let n = 1",)),))).text == "let n = 1\n"
    )
    assert apply_file_edit(None, FileEdit("n.ml", (Hunk(("x",), ("y",)),))).text is None
    appended = apply_file_edit("let a = 1", FileEdit("a.ml", (Hunk((), ("let b = 2",)),)))
    assert appended.text == "let a = 1\nlet b = 2"


# -- indentation: the `-` lines and the file decide, never the context alone (#16) --------

MODULE = "module M = struct\n  let f x =\n    x + 1\n\n  let g y =\n    y * 2\nend\n"


def _apply_diff(text: str, diff: str) -> FileApplyResult:
    [edit] = parse_answer(diff).edits
    return apply_file_edit(text, edit)


def test_context_drifted_alone_leaves_the_added_lines_as_written() -> None:
    # the context is one space deeper than the file; the added line is right
    diff = "--- a/m.ml\n+++ b/m.ml\n@@ -2,2 +2,3 @@\n    let f x =\n      x + 1\n+    |> succ\n"
    result = _apply_diff(MODULE, diff)
    assert result.text == MODULE.replace("    x + 1\n", "    x + 1\n    |> succ\n")


def test_the_minus_lines_decide_how_added_lines_are_indented() -> None:
    want = MODULE.replace("y * 2", "y * 3")
    head = "--- a/m.ml\n+++ b/m.ml\n@@ -5,2 +5,2 @@\n"
    # the whole hunk one space shallower than the file
    assert _apply_diff(MODULE, head + "  let g y =\n-   y * 2\n+   y * 3\n").text == want
    # the context one space deeper, the `-` and `+` lines right
    assert _apply_diff(MODULE, head + "    let g y =\n-    y * 2\n+    y * 3\n").text == want
    # the context right, the `-` and `+` lines one space shallower
    assert _apply_diff(MODULE, head + "   let g y =\n-   y * 2\n+   y * 3\n").text == want


def test_a_shifted_insertion_is_re_indented_when_the_file_decides() -> None:
    # every line one space deeper: only the shift back lands on the file's levels
    diff = "--- a/m.ml\n+++ b/m.ml\n@@ -2,2 +2,3 @@\n    let f x =\n      x + 1\n+     |> succ\n"
    result = _apply_diff(MODULE, diff)
    assert result.text == MODULE.replace("    x + 1\n", "    x + 1\n    |> succ\n")


def test_an_insertion_the_file_cannot_place_is_refused() -> None:
    # context two spaces off: "  |> succ" and "    |> succ" both fit the file's levels
    diff = "--- a/m.ml\n+++ b/m.ml\n@@ -2,2 +2,3 @@\n let f x =\n   x + 1\n+  |> succ\n"
    result = _apply_diff(MODULE, diff)
    assert result.text is None
    assert "indented differently" in result.failures[0].reason
    assert result.failures[0].closest is not None and "x + 1" in result.failures[0].closest


def test_comment_bodies_do_not_count_as_the_files_levels() -> None:
    src = (
        "let run p =\n"
        "  (* Fail in case a call is nested under another invocation of\n"
        "     run. *)\n"
        "  let r =\n"
        "    match p with\n"
        "    | `A ->\n"
        "      f\n"
        "        1\n"
        "    | `B -> 2\n"
        "  in\n"
        "  r\n"
    )
    # context one space shallower than the file; the added comment is right (4, then 7)
    diff = (
        "--- a/r.ml\n+++ b/r.ml\n@@ -5,2 +5,4 @@\n"
        "    match p with\n"
        "+    (* `B is not used for now, because there is a bug\n"
        "+       in the runtime. *)\n"
        "    | `A ->\n"
    )
    result = _apply_diff(src, diff)
    assert result.text == src.replace(
        "    | `A ->\n",
        "    (* `B is not used for now, because there is a bug\n"
        "       in the runtime. *)\n    | `A ->\n",
    )


def test_a_change_of_trailing_whitespace_is_a_change() -> None:
    # `-x` and `+x` are the same text without trailing whitespace: the `+` line is written
    src = "let a = 1  \nlet b = 2\n"
    diff = "--- a/a.ml\n+++ b/a.ml\n@@ -1,2 +1,2 @@\n-let a = 1\n+let a = 1\n let b = 2\n"
    assert _apply_diff(src, diff).text == "let a = 1\nlet b = 2\n"


def test_a_new_file_loses_the_indentation_all_its_lines_share() -> None:
    diff = "--- /dev/null\n+++ b/n.mli\n@@ -0,0 +1,3 @@\n+ val x : int\n+\n+ (** doc *)\n"
    [edit] = parse_answer(diff).edits
    assert apply_file_edit(None, edit).text == "val x : int\n\n(** doc *)\n"
    nested = "module N = struct\n  let x = 1\nend\n"
    assert apply_file_edit(None, FileEdit("n.ml", content=nested)).text == nested


# -- header line numbers choose between equal matches (#16) ------------------------------

REPEATED = "".join(
    f"let v{i} =\n  match x with\n  | None -> 0\n  | Some y -> y\n\n" for i in range(5)
)


def test_equal_matches_settled_by_the_header_line() -> None:
    old_line = 3 * 5 + 2  # 1-based: `match x with` of v3
    diff = (
        f"--- a/r.ml\n+++ b/r.ml\n@@ -{old_line},3 +{old_line},3 @@\n"
        "   match x with\n   | None -> 0\n-  | Some y -> y\n+  | Some y -> y + 1\n"
    )
    result = _apply_diff(REPEATED, diff)
    want = REPEATED.split("\n")
    want[old_line + 1] = "  | Some y -> y + 1"
    assert result.text == "\n".join(want)


def test_equal_matches_none_at_the_header_line_are_refused() -> None:
    diff = (
        "--- a/r.ml\n+++ b/r.ml\n@@ -18,3 +18,3 @@\n"
        "   match x with\n   | None -> 0\n-  | Some y -> y\n+  | Some y -> y + 1\n"
    )
    result = _apply_diff(REPEATED, diff)
    assert result.text is None and "matches 5 places" in result.failures[0].reason
    no_numbers = diff.replace("@@ -18,3 +18,3 @@", "@@ @@")
    assert _apply_diff(REPEATED, no_numbers).text is None


def test_equal_matches_refused_when_the_other_hunks_disagree_on_drift() -> None:
    src = "let a = 1\nend\nlet b = 2\nlet c = 3\nend\nlet d = 4\nlet e = 5\n"
    hunks = [
        Hunk(("let a = 1",), ("let a = 10",), 10),  # drift -10
        Hunk(("let e = 5",), ("let e = 50",), 4),  # drift +2
        Hunk(("end",), ("end;;",), 1),  # exactly at a match, but whose drift?
    ]
    result = apply_hunks(src, hunks)
    assert result.text is None and "matches 2 places" in result.failures[0].reason


def test_identical_hunks_over_as_many_equal_places_apply_to_each() -> None:
    src = "let f x =\n  x + 1\n\nlet g x =\n  x + 1\n"
    hunk = "@@ @@\n-  x + 1\n+  x + 2\n"
    diff = "--- a/f.ml\n+++ b/f.ml\n" + hunk + hunk
    assert _apply_diff(src, diff).text == src.replace("x + 1", "x + 2")
    # one copy for two places is still ambiguous
    assert _apply_diff(src, "--- a/f.ml\n+++ b/f.ml\n" + hunk).text is None


# -- where the added lines go: their outermost lines and their neighbours decide (#16) ----

ATTEMPT = (
    "let create x =\n"
    "  let rec attempt n =\n"
    "    if n > 3 then x\n"
    "    else\n"
    "      attempt (n + 1)\n"
    "  in\n"
    "  attempt 0\n"
    "\n"
    "let rec delete d =\n"
    "  d\n"
)


def test_new_code_may_nest_at_levels_the_file_does_not_use_nearby() -> None:
    # context one space deeper; the added function aligns `|` at column 5, a level the
    # file does not use: its outermost line (column 0) is what must fit the file
    added = (
        "let unlink fn =\n"
        "  Lwt.catch\n"
        "    (fun () -> f fn)\n"
        "    (function\n"
        "     | Unix_error _ -> g fn\n"
        "     | exn -> raise exn)\n"
        "\n"
    )
    diff = "--- a/a.ml\n+++ b/a.ml\n@@ -6,3 +6,10 @@\n    in\n    attempt 0\n \n" + "".join(
        "+" + x + "\n" for x in added.split("\n")[:-1]
    )
    result = _apply_diff(ATTEMPT, diff)
    assert result.text == ATTEMPT.replace("attempt 0\n\n", "attempt 0\n\n" + added)


RUN = (
    "let run ctx =\n"
    "  if enabled ctx then begin\n"
    "    setup ctx;\n"
    "    List.iter\n"
    "      (fun x ->\n"
    "          check x)\n"
    "      (items ctx);\n"
    "    finish ctx\n"
    "  end\n"
)


def test_a_dedented_insertion_between_two_lines_of_one_level_takes_that_level() -> None:
    # the whole hunk 2 spaces shallower than the file. As written (column 2) the new
    # lines would fit the file's levels too, and their new level 8 is one the file does
    # not use nearby: the lines around the insertion (both at 4) decide, not the guess
    diff = (
        "--- a/r.ml\n+++ b/r.ml\n@@ -3,2 +3,5 @@\n"
        "   setup ctx;\n"
        "+  if verbose ctx then\n"
        "+    print_endline\n"
        '+      "verbose";\n'
        "   List.iter\n"
    )
    result = _apply_diff(RUN, diff)
    assert result.text == RUN.replace(
        "    setup ctx;\n",
        '    setup ctx;\n    if verbose ctx then\n      print_endline\n        "verbose";\n',
    )


def test_an_insertion_into_an_empty_block_is_not_put_at_the_block_s_level() -> None:
    # the whole hunk 2 spaces shallower. `begin` opens a block and `end` closes it: the
    # new line goes deeper than both, so as written (column 2, the block's level) is
    # ruled out; shifted (column 4) is a level the file does not use there: refused
    src = "let f x =\n  let r = ref 0 in\n  if x then begin\n  end;\n  !r\n"
    diff = "--- a/f.ml\n+++ b/f.ml\n@@ -3,2 +3,3 @@\n if x then begin\n+  incr r\n end;\n"
    result = _apply_diff(src, diff)
    assert result.text is None and "indented differently" in result.failures[0].reason


SIG = (
    "let wrap p =\n"
    " match p with\n"
    " | Some x -> x\n"
    " | None -> 0\n"
    "\n"
    "module C :\n"
    "sig\n"
    "  val async : (unit -> unit) -> unit\n"
    "  val ignore : 'a -> unit\n"
    "end\n"
)


def test_an_added_line_starting_like_its_neighbour_is_its_sibling() -> None:
    # context one space deeper; the file uses columns 1 and 2 nearby, so both readings
    # fit its levels: the `val` after it says the new `val` is at its level (2)
    diff = (
        "--- a/c.ml\n+++ b/c.ml\n@@ -6,3 +6,4 @@\n"
        "  module C :\n"
        "  sig\n"
        "+  val dont_wait : (unit -> unit) -> unit\n"
        "   val async : (unit -> unit) -> unit\n"
    )
    result = _apply_diff(SIG, diff)
    assert result.text == SIG.replace("sig\n", "sig\n  val dont_wait : (unit -> unit) -> unit\n")


def test_a_block_closing_after_the_insertion_bounds_its_level() -> None:
    # the whole hunk 2 spaces shallower; `]` closes the list the new test goes in, so
    # the new lines are deeper than it: as written they would sit at its level
    src = 'let suite = suite "s" [\n    test "a"\n      (fun () ->\n         ok ()\n      );\n  ]\n'
    diff = (
        "--- a/s.ml\n+++ b/s.ml\n@@ -5,2 +5,6 @@\n"
        "     );\n"
        "+\n"
        '+  test "b"\n'
        "+    (fun () -> ok ()\n"
        "+    );\n"
        " ]\n"
    )
    result = _apply_diff(src, diff)
    assert result.text == src.replace(
        "      );\n  ]", '      );\n\n    test "b"\n      (fun () -> ok ()\n      );\n  ]'
    )


def test_a_lone_header_that_miscounts_its_body_does_not_settle_equal_matches() -> None:
    # `let%test` items end in `;;` every few lines: a line number written from memory
    # lands on one by chance. This header says 0 old lines for a body of 1: it was not
    # computed from the file, so its line is no evidence either
    src = "".join(f'let%test "t{i}" =\n  ok {i}\n;;\n\n' for i in range(4))
    body = ' ;;\n+\n+let%test "new" =\n+  ok 9\n+;;\n'
    miscounted = _apply_diff(src, "--- a/t.ml\n+++ b/t.ml\n@@ -7,0 +7,5 @@\n" + body)
    assert miscounted.text is None and "matches 4 places" in miscounted.failures[0].reason
    # counted right, the same line settles it
    counted = _apply_diff(src, "--- a/t.ml\n+++ b/t.ml\n@@ -7,1 +7,5 @@\n" + body)
    assert counted.text == src.replace(
        "  ok 1\n;;\n", '  ok 1\n;;\n\nlet%test "new" =\n  ok 9\n;;\n'
    )


def test_a_hunk_with_context_only_before_its_changes_sits_at_the_end_of_the_file() -> None:
    # a diff writes fewer context lines after a change only at the file's end (as GNU
    # patch reads it): of the two `;;` endings, the last one
    src = "let a =\n  1\n;;\n\nlet b =\n  1\n;;\n"
    diff = "--- a/t.ml\n+++ b/t.ml\n@@ @@\n   1\n ;;\n+\n+let c = 2\n"
    result = _apply_diff(src, diff)
    assert result.text == src + "\nlet c = 2\n"
    # with as many context lines after the change as before, nothing says where
    mid = "--- a/t.ml\n+++ b/t.ml\n@@ @@\n   1\n+  + 0\n ;;\n"
    assert _apply_diff(src, mid).text is None


def test_a_hunk_with_context_only_after_its_changes_sits_at_the_start_of_the_file() -> None:
    src = "let a =\n  1\n;;\n\nlet a =\n  1\n;;\n"
    diff = "--- a/t.ml\n+++ b/t.ml\n@@ @@\n+open Base\n let a =\n   1\n"
    result = _apply_diff(src, diff)
    assert result.text == "open Base\n" + src


def test_an_empty_line_ending_a_hunk_is_no_evidence_for_the_end_of_the_file() -> None:
    # the empty line may be a context line whose space was stripped (then the hunk is
    # not at the end: the first `;;` has an empty line after it) or a separator
    src = "let a =\n  1\n;;\n\nlet b =\n  1\n;;\n"
    diff = "--- a/t.ml\n+++ b/t.ml\n@@ @@\n ;;\n+let c = 2\n\nThat adds c.\n"
    result = _apply_diff(src, diff)
    assert result.text is None and "matches 2 places" in result.failures[0].reason


GEN = (
    "let gen size =\n"
    "  frequency\n"
    "    [\n"
    "      ( 1,\n"
    "        return Pop );\n"
    "      ( 1,\n"
    "        small_list x >|= fun l ->\n"
    "        Add l );\n"
    "    ]\n"
    "    (fun y ->\n"
    "     y)\n"
)


def test_an_added_item_takes_the_level_of_the_previous_item_of_its_kind() -> None:
    # context one space deeper; the file uses columns 5 and 6 nearby, so both readings fit
    # its levels, and the lines right around say nothing (`Add l );` then `]`). Going back
    # over deeper lines, the first line at column 6 starts like the new item (`( 1,`):
    # the new item is its sibling; at column 5 the first line is `[`, no sibling
    diff = (
        "--- a/g.ml\n+++ b/g.ml\n@@ @@\n"
        "          small_list x >|= fun l ->\n"
        "          Add l );\n"
        "+      ( 1,\n"
        "+        list_size x >|= fun l ->\n"
        "+        Flat_map l );\n"
        "      ]\n"
    )
    result = _apply_diff(GEN, diff)
    assert result.text == GEN.replace(
        "        Add l );\n",
        "        Add l );\n      ( 1,\n        list_size x >|= fun l ->\n        Flat_map l );\n",
    )


DOC = (
    "val run : 'a t -> 'a\n"
    "(** [run p] runs the scheduler.\n"
    "\n"
    "    It returns when [p] is resolved,\n"
    "    and raises if [p] is rejected.\n"
    "\n"
    "    Do not call it from inside a callback. *)\n"
)


def test_added_comment_text_is_aligned_with_the_comment_line_before_it() -> None:
    # the whole hunk one space deeper: the new lines are comment text, which no code
    # level places; the comment line before them (column 4) does
    diff = (
        "--- a/r.mli\n+++ b/r.mli\n@@ -4,3 +4,5 @@\n"
        "      It returns when [p] is resolved,\n"
        "      and raises if [p] is rejected.\n"
        "+     On Unix, it also installs a\n"
        "+     [SIGCHLD] handler.\n"
        " \n"
    )
    result = _apply_diff(DOC, diff)
    assert result.text == DOC.replace(
        "rejected.\n", "rejected.\n    On Unix, it also installs a\n    [SIGCHLD] handler.\n"
    )
    # a list item is not prose: nothing says how deep it goes
    item = diff.replace(
        "+     On Unix, it also installs a\n+     [SIGCHLD] handler.\n", "+     - on Unix\n"
    )
    assert _apply_diff(DOC, item).text is None


def test_identical_hunks_go_one_to_each_place_whatever_their_headers_say() -> None:
    # both drifted headers name the first place (counted, so each alone would be trusted)
    src = "let f x =\n  x + 1\n\nlet g x =\n  x + 1\n"
    hunk = "@@ -2,1 +2,1 @@\n-  x + 1\n+  x + 2\n"
    assert _apply_diff(src, "--- a/f.ml\n+++ b/f.ml\n" + hunk + hunk).text == src.replace(
        "x + 1", "x + 2"
    )


def test_a_line_opening_a_comment_is_no_block_opener() -> None:
    # context one space deeper; `(*$=` ends with `=` but opens an inline test, not a block
    src = "let get a i = a.(i)\n(*$=\n  1 (get [|1|] 0)\n*)\n\nlet fold = Array.fold_left\n"
    diff = (
        "--- a/a.ml\n+++ b/a.ml\n@@ -3,4 +3,6 @@\n"
        "    1 (get [|1|] 0)\n"
        "  *)\n"
        " \n"
        "+let map f a = Array.map f a\n"
        "+\n"
        "  let fold = Array.fold_left\n"
    )
    result = _apply_diff(src, diff)
    assert result.text == src.replace("\nlet fold", "\nlet map f a = Array.map f a\n\nlet fold")
