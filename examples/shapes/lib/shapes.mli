(** Plane shapes and their measures. *)

type t =
  | Circle of float  (** radius *)
  | Rect of float * float  (** width, height *)

val area : t -> float
(** The area of a shape. *)

val perimeter : t -> float
(** The length of a shape's boundary. *)

val describe : t -> string
(** A one-line description, for printing. *)
