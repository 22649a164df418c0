type t =
  | Circle of float
  | Rect of float * float

let pi = 4.0 *. atan 1.0

let area = function
  | Circle r -> pi *. r *. r
  | Rect (w, h) -> w *. h

let perimeter = function
  | Circle r -> 2.0 *. pi *. r
  | Rect (w, h) -> 2.0 *. (w +. h)

let describe shape =
  let name =
    match shape with
    | Circle _ -> "circle"
    | Rect _ -> "rectangle"
  in
  Printf.sprintf "%s: area %.2f, perimeter %.2f" name (area shape) (perimeter shape)
