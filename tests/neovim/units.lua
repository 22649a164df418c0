-- The plugin's pure parts, no server: code units per encoding, the ranges a
-- command sends, project roots, candidate labels.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)")
local H = dofile(here .. "helpers.lua")

local function eq(actual, expected, what)
  if not vim.deep_equal(actual, expected) then
    H.fail(what .. ": expected " .. vim.inspect(expected) .. ", got " .. vim.inspect(actual))
  end
end

H.run(function()
  local ocaml_ai = require("ocaml_ai")
  ocaml_ai.setup({ cmd = { "true" } })
  local text = "aé𝔸b" -- 1 + 2 + 4 + 1 bytes
  eq(ocaml_ai._units(text, "utf-8"), 8, "utf-8 units")
  eq(ocaml_ai._units(text, "utf-16"), 5, "utf-16 units")
  eq(ocaml_ai._units(text, "utf-32"), 4, "utf-32 units")

  local buf = vim.api.nvim_get_current_buf()
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { "let x = 1", "let 𝔸é = \"ok\"", "let z = 3" })
  -- the cursor: a position, in the client's encoding
  vim.api.nvim_win_set_cursor(0, { 2, #"let 𝔸é" })
  local at = { line = 1, character = 7 }
  eq(ocaml_ai._range(buf, { range = 0 }, "utf-16"), { start = at, ["end"] = at }, "cursor utf-16")
  at = { line = 1, character = 10 }
  eq(ocaml_ai._range(buf, { range = 0 }, "utf-8"), { start = at, ["end"] = at }, "cursor utf-8")
  -- a line range: whole lines
  eq(ocaml_ai._range(buf, { range = 2, line1 = 2, line2 = 3 }, "utf-16"), {
    start = { line = 1, character = 0 },
    ["end"] = { line = 2, character = 9 },
  }, "line range")
  -- a charwise visual selection: from its first character to after its last
  vim.cmd('execute "normal! 2G04lvlll\\<Esc>"')
  eq(ocaml_ai._range(buf, { range = 2, line1 = 2, line2 = 2 }, "utf-16"), {
    start = { line = 1, character = 4 },
    ["end"] = { line = 1, character = 9 },
  }, "charwise selection (utf-16)")
  eq(ocaml_ai._range(buf, { range = 2, line1 = 2, line2 = 2 }, "utf-8"), {
    start = { line = 1, character = 4 },
    ["end"] = { line = 1, character = 12 },
  }, "charwise selection (utf-8)")
  -- a linewise one: whole lines
  vim.cmd('execute "normal! 1GVj\\<Esc>"')
  eq(ocaml_ai._range(buf, { range = 2, line1 = 1, line2 = 2 }, "utf-16"), {
    start = { line = 0, character = 0 },
    ["end"] = { line = 1, character = 14 },
  }, "linewise selection")

  -- roots: the nearest dune-project, else the file's directory
  local tmp = H.params.tmp
  eq(ocaml_ai.find_root(tmp .. "/proj/lib/a.ml"), tmp .. "/proj", "root with dune-project")
  eq(ocaml_ai.find_root(tmp .. "/loose/b.ml"), tmp .. "/loose", "root without")

  -- labels
  local diff = table.concat({
    "--- a/lib/a.ml",
    "+++ b/lib/a.ml",
    "@@ -1,3 +1,3 @@",
    " let x = 1",
    "--- removed line that looks like a header",
    "+added",
    "+added too",
  }, "\n")
  eq(
    ocaml_ai.label({ diff = diff, files = { "lib/a.ml" }, verification = { status = "ok" } }, 2),
    "2. ok  lib/a.ml (+2 -1)",
    "label"
  )
  local many = { "a.ml", "b.ml", "c.ml", "d.ml", "e.ml" }
  eq(
    ocaml_ai.label({ diff = "", files = many, verification = { status = "type_error" } }, 1),
    "1. type_error  a.ml, b.ml, c.ml +2 (+0 -0)",
    "label of many files"
  )

  -- progress in the command line, never longer than it
  local function progress(value)
    ocaml_ai._show_progress(1, { token = "t", value = value })
  end
  progress({ kind = "begin", title = "ocaml-ai: indexing", message = "shapes" })
  eq(ocaml_ai.last_progress, "ocaml-ai: indexing: shapes", "progress begin")
  progress({ kind = "report", message = string.rep("x", 500) })
  eq(vim.fn.strdisplaywidth(ocaml_ai.last_progress) < vim.v.echospace, true, "progress fits")
  progress({ kind = "end" })
  eq(ocaml_ai.last_progress, "ocaml-ai: indexing: done", "progress end")

  -- the commands exist
  eq(vim.fn.exists(":OcamlAi"), 2, ":OcamlAi")
  eq(vim.fn.exists(":OcamlAiCancel"), 2, ":OcamlAiCancel")
  vim.fn.writefile({ vim.fn.json_encode({ ok = true }) }, H.params.result)
  vim.cmd("qa!")
end)
