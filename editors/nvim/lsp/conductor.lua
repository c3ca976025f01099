-- Neovim 0.11+: `vim.lsp.enable("conductor")` starts conductor-lsp for markdown and text buffers.
-- Override any field with `vim.lsp.config("conductor", { ... })`. The :Conductor* commands work with it.
---@type vim.lsp.Config
return {
  cmd = { "conductor-lsp", "--stdio" },
  filetypes = { "markdown", "text" },
  root_markers = { ".conductor", ".git" },
  -- Server settings (snake_case, as in ~/.config/conductor/config.toml), e.g.
  -- { providers = { "wikipedia", "arxiv" }, max_sources = 8, citation_style = "numbered", cited_only = true }.
  -- :checkhealth conductor shows what a client was given and warns about unknown keys.
  init_options = {},
  settings = { conductor = {} },
}
