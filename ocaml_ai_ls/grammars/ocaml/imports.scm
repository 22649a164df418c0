; What brings names into scope: `open M` (also `open! M`, `let open M in`, and
; `open M` in a signature),
; `M.(expr)` local opens, and `include M`. Module aliases `module A = B` are
; definitions (definitions.scm) whose body is a module path.

(open_module module: (_) @module) @open
(open_module_signature (_) @module) @open
(local_open_expression (module_path) @module) @open
(include_module module: (_) @module) @include
