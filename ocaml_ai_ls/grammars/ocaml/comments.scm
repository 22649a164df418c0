; Every comment; code actions look for instruction comments `(* ai: ... *)`
; among the ones near the cursor (the cursor restricts the point range).
(comment) @comment
