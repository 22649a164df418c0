-- Shared by the headless Neovim test scripts: parameters from the test, bounded
-- waits, failures that quit with a message, and a clean stop of the server.
local H = {}

local params_file = os.getenv("NVIM_OCAML_AI_TEST")
H.params = vim.fn.json_decode(table.concat(vim.fn.readfile(params_file), "\n"))
H.notes = {}
H.echoed = {}

--- Quit at once with exit status 1 and the reason on stderr.
function H.fail(message)
  io.stderr:write("FAIL: " .. tostring(message) .. "\n")
  for _, note in ipairs(H.notes) do
    io.stderr:write(string.format("notify[%s]: %s\n", tostring(note.level), note.message))
  end
  io.stderr:flush()
  vim.cmd("cquit 1")
end

--- Wait for `condition` at most `ms` milliseconds, else fail naming `what`.
function H.wait(ms, condition, what)
  if not vim.wait(ms, condition, 20) then
    H.fail("timed out after " .. ms .. " ms waiting for " .. what)
  end
end

-- Record what the plugin shows: vim.notify messages and command-line echoes.
vim.notify = function(message, level)
  table.insert(H.notes, { message = message, level = level })
  io.stderr:write(string.format("notify[%s]: %s\n", tostring(level), message))
end
local echo = vim.api.nvim_echo
vim.api.nvim_echo = function(chunks, history, opts)
  local text = {}
  for _, chunk in ipairs(chunks) do
    table.insert(text, chunk[1])
  end
  table.insert(H.echoed, table.concat(text))
  return echo(chunks, history, opts)
end

function H.lines(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n") .. "\n"
end

--- Set up the plugin as a user would, open the file and wait for the server.
function H.open(opts)
  vim.cmd("filetype on")
  local ocaml_ai = require("ocaml_ai")
  ocaml_ai.setup(vim.tbl_extend("force", {
    cmd = H.params.cmd,
    settings = H.params.settings,
  }, opts or {}))
  vim.cmd("edit " .. vim.fn.fnameescape(H.params.file))
  local bufnr = vim.api.nvim_get_current_buf()
  H.wait(20000, function()
    local client = ocaml_ai.client(bufnr)
    return client ~= nil and client.initialized
  end, "the ocaml-ai client to attach (filetype " .. vim.bo[bufnr].filetype .. ")")
  return bufnr, ocaml_ai.client(bufnr)
end

--- Write `result` as JSON for the test, stop the server cleanly (it writes its
--- metrics at shutdown) and quit.
function H.finish(result)
  result.notes = H.notes
  result.echoed = H.echoed
  vim.fn.writefile({ vim.fn.json_encode(result) }, H.params.result)
  local ids = require("ocaml_ai").client_ids()
  vim.lsp.stop_client(ids)
  H.wait(10000, function()
    for _, id in ipairs(ids) do
      if vim.lsp.get_client_by_id(id) then
        return false
      end
    end
    return true
  end, "the server to stop")
  vim.cmd("qa!")
end

--- Run a test body; any Lua error fails the run instead of leaving Neovim waiting.
function H.run(body)
  local ok, err = xpcall(body, debug.traceback)
  if not ok then
    H.fail(err)
  end
end

return H
