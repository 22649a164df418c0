; Names bound by patterns anywhere in an item (parameters, match cases, let-in):
; a use of one of them inside the item is local, not a reference to the project.
(value_pattern) @bound
