/**
 * A real answer of `ocaml-ai.generate` (captured from `ocaml-ai-ls edit --json` on
 * examples/shapes with a scripted model: one answer that does not type-check, one
 * that does and creates a file, one without an edit), with the file it was made for.
 */

export const ROOT = "file:///home/user/shapes";

export const SHAPES_ML = "type t =\n  | Circle of float\n  | Rect of float * float\n\nlet pi = 4.0 *. atan 1.0\n\nlet area = function\n  | Circle r -> pi *. r *. r\n  | Rect (w, h) -> w *. h\n\nlet perimeter = function\n  | Circle r -> 2.0 *. pi *. r\n  | Rect (w, h) -> 2.0 *. (w +. h)\n\nlet describe shape =\n  let name =\n    match shape with\n    | Circle _ -> \"circle\"\n    | Rect _ -> \"rectangle\"\n  in\n  Printf.sprintf \"%s: area %.2f, perimeter %.2f\" name (area shape) (perimeter shape)\n";

export const SERVER_RESULT: unknown = {
  "id": "c793587ee4a7",
  "candidates": [
    {
      "id": "c793587ee4a7-1",
      "model": "scripted-model",
      "diff": "--- a/lib/shapes.ml\n+++ b/lib/shapes.ml\n@@ -6,7 +6,7 @@\n \n let area = function\n   | Circle r -> pi *. r *. r\n-  | Rect (w, h) -> w *. h\n+  | Rect (w, h) -> abs_float (w *. h)\n \n let perimeter = function\n   | Circle r -> 2.0 *. pi *. r\n--- /dev/null\n+++ b/lib/extra.ml\n@@ -0,0 +1 @@\n+let extra = 1\n",
      "edit": {
        "documentChanges": [
          {
            "textDocument": {
              "uri": "file:///home/user/shapes/lib/shapes.ml",
              "version": null
            },
            "edits": [
              {
                "range": {
                  "start": {
                    "line": 8,
                    "character": 0
                  },
                  "end": {
                    "line": 9,
                    "character": 0
                  }
                },
                "newText": "  | Rect (w, h) -> abs_float (w *. h)\n"
              }
            ]
          },
          {
            "uri": "file:///home/user/shapes/lib/extra.ml",
            "kind": "create",
            "options": {
              "overwrite": false,
              "ignoreIfExists": false
            }
          },
          {
            "textDocument": {
              "uri": "file:///home/user/shapes/lib/extra.ml",
              "version": null
            },
            "edits": [
              {
                "range": {
                  "start": {
                    "line": 0,
                    "character": 0
                  },
                  "end": {
                    "line": 0,
                    "character": 0
                  }
                },
                "newText": "let extra = 1\n"
              }
            ]
          }
        ]
      },
      "verification": {
        "status": "ok",
        "stages": [
          {
            "name": "parse",
            "status": "ok",
            "ms": 0.21
          },
          {
            "name": "check",
            "status": "ok",
            "ms": 103
          }
        ],
        "errors": []
      },
      "files": [
        "lib/shapes.ml",
        "lib/extra.ml"
      ],
      "round": 0
    },
    {
      "id": "c793587ee4a7-0",
      "model": "scripted-model",
      "diff": "--- a/lib/shapes.ml\n+++ b/lib/shapes.ml\n@@ -6,7 +6,7 @@\n \n let area = function\n   | Circle r -> pi *. r *. r\n-  | Rect (w, h) -> w *. h\n+  | Rect (w, h) -> abs (w *. h)\n \n let perimeter = function\n   | Circle r -> 2.0 *. pi *. r\n",
      "edit": {
        "documentChanges": [
          {
            "textDocument": {
              "uri": "file:///home/user/shapes/lib/shapes.ml",
              "version": null
            },
            "edits": [
              {
                "range": {
                  "start": {
                    "line": 8,
                    "character": 0
                  },
                  "end": {
                    "line": 9,
                    "character": 0
                  }
                },
                "newText": "  | Rect (w, h) -> abs (w *. h)\n"
              }
            ]
          }
        ]
      },
      "verification": {
        "status": "type_error",
        "stages": [
          {
            "name": "parse",
            "status": "ok",
            "ms": 0.33
          },
          {
            "name": "check",
            "status": "type_error",
            "ms": 41
          }
        ],
        "errors": [
          {
            "path": "lib/shapes.ml",
            "line": 9,
            "column": 24,
            "message": "This expression has type float but an expression was expected of type int",
            "end_line": 9,
            "end_column": 32,
            "preexisting": false
          }
        ]
      },
      "files": [
        "lib/shapes.ml"
      ],
      "round": 0
    }
  ],
  "applied": false,
  "cancelled": false,
  "error": null,
  "rejected": [
    {
      "id": "c793587ee4a7-2",
      "model": "scripted-model",
      "reason": "no edit found in the answer (expected SEARCH/REPLACE blocks or a unified diff)"
    }
  ],
  "timings": {
    "context_ms": 1.75,
    "model_ms": 30.85,
    "first_token_ms": 30.08,
    "parse_ms": 0.13,
    "apply_ms": 0.8,
    "check_ms": 203.92,
    "verify_ms": 205.97,
    "total_ms": 238.91
  },
  "arm": "",
  "provider": "openai",
  "model": "scripted-model",
  "strategy": "search_replace"
};
