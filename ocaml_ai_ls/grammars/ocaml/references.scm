; Uses of names: the engine resolves each path through module paths, opens,
; aliases and dune library wrapping. A module path nested in another path
; (`Foo` in `Foo.bar`) is part of that path, not a reference of its own.

; x, List.length, Foo.Bar.( +++ )
(value_path) @reference.value

; t, Foo.t, X.t in `with type t = X.t`
(type_constructor_path) @reference.type

; Some, Shape.Circle (expressions and patterns)
(constructor_path) @reference.constructor

; r.name, r.Shape.name, { name = ... }, { name; _ }
(field_path) @reference.field

; modules used as such: functor arguments, aliases, `module type of M`
(module_path) @reference.module
(extended_module_path) @reference.module

; S in `module M : S`, `(X : S)`
(module_type_path) @reference.module_type
