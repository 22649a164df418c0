(* Small integer helpers. *)

let add a b = a + b

let double x = x * 2

let square x = x * x

let clamp lo hi x = if x < lo then lo else if x > hi then hi else x
