; A comment directly before a definition documents it (`(** ... *)` by
; convention, but a plain comment right above an item is read the same way);
; the engine keeps it only when it ends on the line before the item.
((comment) @doc . (_) @item)
