-- The server's `AI: ...` code action through vim.lsp.buf.code_action(), as a user
-- picks it from vim.ui.select.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)")
local H = dofile(here .. "helpers.lua")

H.run(function()
  local bufnr = H.open()
  vim.api.nvim_win_set_cursor(0, { H.params.line + 1, 0 })
  local before = H.lines(bufnr)
  local offered, chosen = {}, nil
  vim.ui.select = function(items, opts, on_choice)
    for _, item in ipairs(items) do
      local label = opts.format_item(item)
      table.insert(offered, label)
      if label == H.params.title and not chosen then
        chosen = item
      end
    end
    if not chosen then
      H.fail("no code action titled " .. H.params.title .. ": " .. vim.inspect(offered))
    end
    on_choice(chosen)
  end
  vim.lsp.buf.code_action()
  H.wait(30000, function()
    return H.lines(bufnr) ~= before
  end, "the code action's edit")
  -- another file of the project shares the client
  local client = require("ocaml_ai").client(bufnr)
  vim.cmd("split " .. vim.fn.fnameescape(H.params.interface))
  local other = vim.api.nvim_get_current_buf()
  H.wait(10000, function()
    return vim.lsp.buf_is_attached(other, client.id)
  end, "the .mli buffer to attach")
  H.finish({
    text = H.lines(bufnr),
    offered = offered,
    clients = #require("ocaml_ai").client_ids(),
    interface_filetype = vim.bo[other].filetype,
  })
end)
