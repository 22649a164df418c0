; Definitions the workspace index records: `@name` is the defined name and
; `@definition.KIND` the node that defines it. Only definitions at module level
; count (the engine drops the ones inside expressions: local lets, function
; parameters); the engine refines `value` into function and `module` into
; functor, and `constructor` under `exception` into exception.

; let x = ... / let f a b = ... / let rec f ... and g ... / let ( +++ ) a b = ...
(let_binding pattern: (value_name) @name) @definition.value
(let_binding pattern: (parenthesized_operator) @name) @definition.value

; val x : t  (interfaces and signatures)
(value_specification (value_name) @name) @definition.value
(value_specification (parenthesized_operator) @name) @definition.value

; external f : int -> int = "c_f"
(external (value_name) @name) @definition.external
(external (parenthesized_operator) @name) @definition.external

; type t = ... and u = ...
(type_binding name: (type_constructor) @name) @definition.type

; Red | Green of int  and  exception E of string
(constructor_declaration (constructor_name) @name) @definition.constructor

; { name : string; mutable size : int }
(field_declaration (field_name) @name) @definition.field

; module M = struct ... end / module M : S / module F (X : S) = ... / module A = B
(module_binding (module_name) @name) @definition.module

; module type S = sig ... end
(module_type_definition (module_type_name) @name) @definition.module_type

; class c = object ... end / class type ct = object ... end
(class_binding (class_name) @name) @definition.class
(class_type_binding (class_type_name) @name) @definition.class
