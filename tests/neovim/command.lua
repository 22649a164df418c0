-- :OcamlAi at the cursor: candidates offered in vim.ui.select with their diffs in
-- a preview split; the chosen one (params.choose, or cancel when 0) applied.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)")
local H = dofile(here .. "helpers.lua")

H.run(function()
  local ocaml_ai = require("ocaml_ai")
  local bufnr = H.open({ candidates = H.params.candidates })
  vim.api.nvim_win_set_cursor(0, { H.params.line + 1, H.params.column or 0 })
  local labels, previews, asked = {}, {}, false
  vim.ui.select = function(items, opts, on_choice)
    asked = true
    for _, item in ipairs(items) do
      table.insert(labels, opts.format_item(item))
    end
    for _, win in ipairs(vim.api.nvim_list_wins()) do
      local buf = vim.api.nvim_win_get_buf(win)
      if buf ~= bufnr then
        table.insert(previews, {
          filetype = vim.bo[buf].filetype,
          lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false),
          current = win == vim.api.nvim_get_current_win(),
        })
      end
    end
    local choice = H.params.choose
    on_choice(choice > 0 and items[choice] or nil)
  end
  vim.cmd(H.params.command)
  H.wait(30000, function()
    return ocaml_ai.last_feedback ~= nil and ocaml_ai.last_feedback.done
      or (ocaml_ai.last_result ~= nil and not asked)
  end, "the candidates to be offered and the feedback sent")
  local result = ocaml_ai.last_result or {}
  H.finish({
    text = H.lines(bufnr),
    labels = labels,
    previews = previews,
    asked = asked,
    id = result.id,
    feedback = ocaml_ai.last_feedback,
    windows = #vim.api.nvim_list_wins(),
  })
end)
