# ocaml-ai-ls beside ocamllsp in Kakoune with kakoune-lsp (17 or later: the
# `lsp_servers` option, several servers per buffer). Source it from your kakrc
# after kakoune-lsp is loaded. Then `lsp-code-actions` on an `(* ai: ... *)`
# comment or a diagnostic offers the AI actions.
hook global BufSetOption filetype=ocaml %{
    set-option buffer lsp_servers %{
        [ocamllsp]
        root_globs = ["dune-project", "*.opam", ".git"]
        [ocaml-ai-ls]
        root_globs = ["dune-project", ".git"]
    }
}
