-- ocaml-ai: Neovim client for ocaml-ai-ls (Neovim 0.7 and later).
--
--   require("ocaml_ai").setup{}
--
-- attaches the server to OCaml buffers beside any other client (ocamllsp), one
-- client per project root (the nearest directory with a dune-project, else the
-- file's directory). Code actions (`AI: ...`) come through the usual
-- `vim.lsp.buf.code_action()`; `:OcamlAi {instruction}` asks for candidates,
-- shows their diffs in a preview split and applies the one picked in
-- `vim.ui.select`; progress shows in the command line.

local M = {}

local NAME = "ocaml-ai"
local GENERATE = "ocaml-ai.generate"
local FEEDBACK = "ocaml-ai.feedback"

local defaults = {
  cmd = { "ocaml-ai-ls" },
  -- Extra environment for the server process (merged with Neovim's).
  cmd_env = nil,
  -- The server's settings (README "Settings"): initializationOptions and the
  -- `ocaml-ai` section of workspace/configuration.
  settings = {},
  -- Candidates asked for by :OcamlAi.
  candidates = 3,
  -- .mli files are "ocaml" in Neovim's detection, "ocamlinterface" with some plugins
  filetypes = { "ocaml", "ocamlinterface", "ocaml_interface" },
  -- Files whose nearest directory is the project root.
  root_markers = { "dune-project" },
  -- Show $/progress in the command line.
  progress = true,
  -- Show the candidates' diffs in a preview split while choosing.
  preview = true,
  -- Extra client capabilities, merged over Neovim's.
  capabilities = nil,
  -- Called as on_attach(client, bufnr).
  on_attach = nil,
}

M.config = vim.deepcopy(defaults)

--- Client ids by project root.
local clients_by_root = {}
--- The `:OcamlAi` request in flight: {client = ..., id = request id}.
local in_flight = nil

local uv = vim.uv or vim.loop

-- ---------------------------------------------------------------------------
-- Compatibility: Neovim 0.11 made client functions methods (client:request);
-- the dot form still works there but is deprecated.

local method_style = vim.fn.has("nvim-0.11") == 1

local function client_call(client, name, ...)
  if method_style then
    return client[name](client, ...)
  end
  return client[name](...)
end

local function notify(msg, level)
  vim.notify(NAME .. ": " .. msg, level or vim.log.levels.INFO)
end

--- Lua tables for JSON: an empty table would be sent as `[]`; settings are objects.
local function as_object(value, key)
  if type(value) ~= "table" or key == "arms" then
    return value
  end
  if next(value) == nil then
    return vim.empty_dict()
  end
  local out = {}
  for k, v in pairs(value) do
    out[k] = as_object(v, k)
  end
  return out
end

-- ---------------------------------------------------------------------------
-- Roots and clients

local function is_file(path)
  local stat = uv.fs_stat(path)
  return stat ~= nil and stat.type == "file"
end

--- The nearest directory above `path` holding a root marker, else its directory.
function M.find_root(path)
  local start = vim.fn.fnamemodify(path, ":p:h")
  local dir = start
  while true do
    for _, marker in ipairs(M.config.root_markers) do
      if is_file(dir .. "/" .. marker) then
        return dir
      end
    end
    local parent = vim.fn.fnamemodify(dir, ":h")
    if parent == dir then
      return start
    end
    dir = parent
  end
end

local function progress_handler(err, result, ctx, config)
  local default = vim.lsp.handlers["$/progress"]
  if default then
    pcall(default, err, result, ctx, config)
  end
  if M.config.progress then
    M._show_progress(ctx.client_id, result)
  end
end

local titles = {}

--- "ocaml-ai: <title>: <message>" in the command line, short enough to never ask
--- for hit-enter.
function M._show_progress(client_id, result)
  local value = result and result.value
  if type(value) ~= "table" or not value.kind then
    return
  end
  local key = tostring(client_id) .. ":" .. tostring(result.token)
  if value.kind == "begin" then
    titles[key] = value.title or ""
  end
  local title = (titles[key] or ""):gsub("^" .. NAME:gsub("%-", "%%-") .. ": ", "")
  local message = value.message
  if value.kind == "end" then
    titles[key] = nil
    message = message or "done"
  end
  local text = NAME .. ": " .. title
  if message and message ~= "" then
    text = text .. ": " .. message
  end
  if type(value.percentage) == "number" then
    text = text .. string.format(" (%d%%)", value.percentage)
  end
  text = text:gsub("[\r\n]+", " ")
  local width = math.max(vim.v.echospace or 0, 20) - 1
  if vim.fn.strdisplaywidth(text) > width then
    text = vim.fn.strcharpart(text, 0, width - 1) .. "…"
  end
  M.last_progress = text
  vim.api.nvim_echo({ { text } }, false, {})
end

local function capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps = vim.tbl_deep_extend("force", caps, {
    workspace = {
      applyEdit = true,
      configuration = true,
      -- util.apply_workspace_edit applies documentChanges (versioned edits,
      -- CreateFile) since 0.5; Neovim 0.7 does not say so itself.
      workspaceEdit = { documentChanges = true },
    },
    window = { workDoneProgress = true },
  })
  if M.config.capabilities then
    caps = vim.tbl_deep_extend("force", caps, M.config.capabilities)
  end
  return caps
end

local function client_config(root)
  local settings = as_object(M.config.settings or {})
  return {
    name = NAME,
    cmd = M.config.cmd,
    cmd_env = M.config.cmd_env,
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = root } },
    init_options = settings,
    settings = { [NAME] = settings },
    capabilities = capabilities(),
    handlers = { ["$/progress"] = progress_handler },
    on_attach = M.config.on_attach,
    on_exit = function(_, _, client_id)
      if clients_by_root[root] == client_id then
        clients_by_root[root] = nil
      end
    end,
  }
end

local function live(client_id)
  local client = client_id and vim.lsp.get_client_by_id(client_id)
  if not client then
    return nil
  end
  local stopped = client_call(client, "is_stopped")
  return (not stopped) and client or nil
end

--- Attach the server to `bufnr` (started for its root when none runs yet).
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name == "" or vim.bo[bufnr].buftype ~= "" or name:match("^%a[%w+.-]*://") then
    return nil
  end
  local root = M.find_root(name)
  local config = client_config(root)
  if vim.lsp.start then -- 0.8+: starts or reuses, and attaches
    local id = vim.lsp.start(config, {
      bufnr = bufnr,
      reuse_client = function(client, conf)
        return client.name == conf.name and client.config.root_dir == conf.root_dir
      end,
    })
    clients_by_root[root] = id
    return id
  end
  local id = clients_by_root[root]
  if not live(id) then
    id = vim.lsp.start_client(config)
    if not id then
      notify("could not start " .. table.concat(M.config.cmd, " "), vim.log.levels.ERROR)
      return nil
    end
    clients_by_root[root] = id
  end
  vim.lsp.buf_attach_client(bufnr, id)
  return id
end

--- The ocaml-ai client attached to `bufnr`, if any.
function M.client(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  for _, id in pairs(clients_by_root) do
    local client = live(id)
    if client and vim.lsp.buf_is_attached(bufnr, id) then
      return client
    end
  end
  return nil
end

--- Ids of the clients started by this plugin.
function M.client_ids()
  local ids = {}
  for _, id in pairs(clients_by_root) do
    table.insert(ids, id)
  end
  return ids
end

-- ---------------------------------------------------------------------------
-- Positions in the negotiated encoding

--- Code units of `text` in `encoding` ("utf-8", "utf-16" or "utf-32").
function M._units(text, encoding)
  if encoding == "utf-8" then
    return #text
  end
  local count, i = 0, 1
  while i <= #text do
    local byte = text:byte(i)
    local size = byte < 0x80 and 1 or byte < 0xE0 and 2 or byte < 0xF0 and 3 or 4
    count = count + ((size == 4 and encoding == "utf-16") and 2 or 1)
    i = i + size
  end
  return count
end

local function line_text(bufnr, row)
  return vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
end

local function position(bufnr, row, byte_col, encoding)
  local text = line_text(bufnr, row)
  return { line = row, character = M._units(text:sub(1, byte_col), encoding) }
end

--- The LSP range of a command: the visual selection when the command's range is
--- it, the lines of a line range, else the cursor.
function M._range(bufnr, opts, encoding)
  opts = opts or {}
  if (opts.range or 0) == 0 then
    local cursor = vim.api.nvim_win_get_cursor(0)
    local pos = position(bufnr, cursor[1] - 1, cursor[2], encoding)
    return { start = pos, ["end"] = pos }
  end
  local first, last = opts.line1 - 1, opts.line2 - 1
  local from = vim.api.nvim_buf_get_mark(bufnr, "<")
  local to = vim.api.nvim_buf_get_mark(bufnr, ">")
  if vim.fn.visualmode() == "v" and from[1] - 1 == first and to[1] - 1 == last then
    local last_line = line_text(bufnr, last)
    local end_col = math.min(to[2], #last_line)
    -- the selection includes the character under '>: end after it
    local char = vim.fn.strcharpart(last_line:sub(end_col + 1), 0, 1)
    return {
      start = position(bufnr, first, from[2], encoding),
      ["end"] = position(bufnr, last, end_col + #char, encoding),
    }
  end
  return {
    start = { line = first, character = 0 },
    ["end"] = position(bufnr, last, #line_text(bufnr, last), encoding),
  }
end

-- ---------------------------------------------------------------------------
-- Candidates

--- Lines added and removed by a unified diff (file headers not counted).
function M._diff_counts(diff)
  local added, removed = 0, 0
  local lines = vim.split(diff or "", "\n", { plain = true })
  local i = 1
  while i <= #lines do
    local line = lines[i]
    if line:sub(1, 4) == "--- " and (lines[i + 1] or ""):sub(1, 4) == "+++ " then
      i = i + 1
    elseif line:sub(1, 1) == "+" then
      added = added + 1
    elseif line:sub(1, 1) == "-" then
      removed = removed + 1
    end
    i = i + 1
  end
  return added, removed
end

--- "1. ok  lib/shapes.ml (+1 -1)"
function M.label(candidate, index)
  local verification = candidate.verification or {}
  local added, removed = M._diff_counts(candidate.diff)
  local files = candidate.files or {}
  local shown = table.concat(vim.list_slice(files, 1, 3), ", ")
  if #files > 3 then
    shown = shown .. string.format(" +%d", #files - 3)
  end
  return string.format(
    "%d. %s  %s (+%d -%d)",
    index,
    verification.status or "?",
    shown,
    added,
    removed
  )
end

local function open_preview(candidates)
  local lines = {}
  for i, candidate in ipairs(candidates) do
    if #candidates > 1 then
      table.insert(lines, "# " .. M.label(candidate, i))
    end
    local diff = (candidate.diff or ""):gsub("\n$", "")
    vim.list_extend(lines, vim.split(diff, "\n", { plain = true }))
  end
  local origin = vim.api.nvim_get_current_win()
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].bufhidden = "wipe"
  vim.bo[buf].modifiable = false
  vim.bo[buf].filetype = "diff"
  vim.cmd(string.format("botright %dsplit", math.max(3, math.min(#lines, 15))))
  local win = vim.api.nvim_get_current_win()
  vim.api.nvim_win_set_buf(win, buf)
  vim.wo[win].number = false
  vim.wo[win].winfixheight = true
  vim.api.nvim_set_current_win(origin)
  return win
end

local function close_preview(win)
  if win and vim.api.nvim_win_is_valid(win) then
    pcall(vim.api.nvim_win_close, win, true)
  end
end

--- The version of a buffer as the client reports it in didOpen/didChange.
local function buffer_version(bufnr)
  if vim.fn.has("nvim-0.11") == 0 and vim.lsp.util.buf_versions then
    return vim.lsp.util.buf_versions[bufnr]
  end
  return vim.api.nvim_buf_get_changedtick(bufnr)
end

--- The file of a versioned document of the edit that changed since, if any.
local function stale(edit)
  for _, change in ipairs(edit.documentChanges or {}) do
    local doc = change.textDocument
    if doc and type(doc.version) == "number" then
      local bufnr = vim.fn.bufnr(vim.uri_to_fname(doc.uri))
      local version = bufnr > 0 and vim.api.nvim_buf_is_loaded(bufnr) and buffer_version(bufnr)
      if version and version ~= doc.version then
        return vim.uri_to_fname(doc.uri)
      end
    end
  end
  return nil
end

--- Tell the server whether the user kept generation `id`'s edit. `M.last_feedback`
--- holds what was sent, `done` once the server answered.
local function feedback(client, id, accepted)
  if not id then
    return
  end
  local sent = { id = id, accepted = accepted, done = false }
  M.last_feedback = sent
  local params = { command = FEEDBACK, arguments = { { id = id, accepted = accepted } } }
  client_call(client, "request", "workspace/executeCommand", params, function(err)
    sent.done = true
    if err then
      notify("feedback: " .. tostring(err.message or err), vim.log.levels.WARN)
    end
  end)
end

local function apply(client, result, candidate, index)
  local path = stale(candidate.edit or {})
  if path then
    notify(path .. " changed since the request; run :OcamlAi again", vim.log.levels.WARN)
    return false
  end
  local ok, err = pcall(vim.lsp.util.apply_workspace_edit, candidate.edit, client.offset_encoding)
  if not ok then
    notify("could not apply the edit: " .. tostring(err), vim.log.levels.ERROR)
    return false
  end
  notify("applied " .. M.label(candidate, index))
  feedback(client, result.id, true)
  return true
end

--- Offer the candidates of a generate result; apply the one chosen.
function M.choose(client, result)
  local candidates = result.candidates or {}
  local preview = M.config.preview and open_preview(candidates) or nil
  local items = {}
  for i, candidate in ipairs(candidates) do
    items[i] = { index = i, candidate = candidate }
  end
  vim.ui.select(items, {
    prompt = NAME .. ": apply which edit?",
    kind = "ocaml_ai",
    format_item = function(item)
      return M.label(item.candidate, item.index)
    end,
  }, function(item)
    close_preview(preview)
    if not item then
      feedback(client, result.id, false)
      return
    end
    apply(client, result, item.candidate, item.index)
  end)
end

local function report(client, err, result)
  if err then
    notify(tostring(err.message or vim.inspect(err)), vim.log.levels.ERROR)
    return
  end
  if type(result) ~= "table" then
    notify("the server gave no result", vim.log.levels.ERROR)
    return
  end
  M.last_result = result
  if result.cancelled then
    notify("cancelled")
    return
  end
  if result.error and result.error ~= vim.NIL then
    notify(tostring(result.error), vim.log.levels.ERROR)
    return
  end
  if not result.candidates or #result.candidates == 0 then
    local reasons = {}
    for _, rejected in ipairs(result.rejected or {}) do
      table.insert(reasons, rejected.reason)
    end
    local why = #reasons > 0 and table.concat(reasons, "; ") or "no edit was produced"
    notify("no usable edit: " .. why, vim.log.levels.WARN)
    return
  end
  M.choose(client, result)
end

--- Ask for candidates of `instruction` at the cursor or over `opts.range`
--- (`{range = 0|1|2, line1, line2}` as a user command gets them).
function M.generate(instruction, opts)
  opts = opts or {}
  instruction = vim.trim(instruction or "")
  if instruction == "" then
    notify("usage: :OcamlAi {instruction}", vim.log.levels.ERROR)
    return
  end
  local bufnr = vim.api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if not client then
    notify("no server attached to this buffer (require('ocaml_ai').setup{})", vim.log.levels.ERROR)
    return
  end
  if not client.initialized then
    vim.wait(10000, function()
      return client.initialized or client_call(client, "is_stopped")
    end, 50)
    if not client.initialized then
      notify("the server is not ready", vim.log.levels.ERROR)
      return
    end
  end
  local arg = {
    uri = vim.uri_from_bufnr(bufnr),
    range = M._range(bufnr, opts, client.offset_encoding or "utf-16"),
    instruction = instruction,
    candidates = opts.candidates or M.config.candidates,
    apply = false,
  }
  local params = { command = GENERATE, arguments = { arg } }
  local function on_result(err, result)
    in_flight = nil
    local done, problem = pcall(report, client, err, result)
    if not done then
      notify(tostring(problem), vim.log.levels.ERROR)
    end
  end
  local ok, request_id =
    client_call(client, "request", "workspace/executeCommand", params, on_result, bufnr)
  if ok then
    in_flight = { client = client, id = request_id }
  else
    notify("the server is not running", vim.log.levels.ERROR)
  end
end

--- Cancel the `:OcamlAi` request in flight.
function M.cancel()
  if not in_flight then
    notify("nothing to cancel")
    return
  end
  client_call(in_flight.client, "cancel_request", in_flight.id)
  in_flight = nil
end

-- ---------------------------------------------------------------------------
-- Setup

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts or {})
  -- lists are replaced, not merged index by index
  for _, key in ipairs({ "cmd", "filetypes", "root_markers" }) do
    if opts and opts[key] then
      M.config[key] = opts[key]
    end
  end
  local group = vim.api.nvim_create_augroup("ocaml_ai", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = M.config.filetypes,
    callback = function(args)
      M.attach(args.buf)
    end,
    desc = "ocaml-ai: attach the language server",
  })
  vim.api.nvim_create_user_command("OcamlAi", function(args)
    M.generate(args.args, { range = args.range, line1 = args.line1, line2 = args.line2 })
  end, { nargs = "+", range = true, desc = "ocaml-ai: edit by instruction" })
  vim.api.nvim_create_user_command("OcamlAiCancel", function()
    M.cancel()
  end, { nargs = 0, desc = "ocaml-ai: cancel the request in flight" })
  -- buffers already open when setup runs
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    local filetype = vim.bo[bufnr].filetype
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(M.config.filetypes, filetype) then
      M.attach(bufnr)
    end
  end
end

return M
