-- User commands of the Conductor plugin. They work whether the server was started by
-- require("conductor").setup(), by vim.lsp.enable("conductor") (Neovim 0.11+), or by nvim-lspconfig,
-- as long as the client is named "conductor".
if vim.g.loaded_conductor then
  return
end
vim.g.loaded_conductor = 1

vim.api.nvim_create_user_command("ConductorResearch", function(opts)
  require("conductor").research({ range = opts.range, line1 = opts.line1, line2 = opts.line2, args = opts.args })
end, {
  range = true,
  nargs = "*",
  desc = "Conductor: research the selection, the heading under the cursor, or the given topic",
})

vim.api.nvim_create_user_command("ConductorRefresh", function(opts)
  require("conductor").refresh({ range = opts.range, line1 = opts.line1, line2 = opts.line2 })
end, { range = true, desc = "Conductor: refresh the report under the cursor" })

vim.api.nvim_create_user_command("ConductorCancel", function(opts)
  require("conductor").cancel(opts.bang)
end, { bang = true, desc = "Conductor: cancel research in this buffer (! = everywhere)" })
