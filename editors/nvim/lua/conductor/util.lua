-- Small helpers that differ between Neovim 0.7 and current versions.
local M = {}

M.has = function(feature)
  return vim.fn.has(feature) == 1
end

--- Every active LSP client named `name` (optionally attached to `bufnr`).
function M.get_clients(name, bufnr)
  local clients
  if vim.lsp.get_clients then -- 0.10+
    clients = vim.lsp.get_clients({ name = name, bufnr = bufnr })
  elseif bufnr then
    clients = vim.tbl_values(vim.lsp.buf_get_clients(bufnr))
  else
    clients = vim.lsp.get_active_clients()
  end
  local out = {}
  for _, c in ipairs(clients) do
    if c.name == name then
      table.insert(out, c)
    end
  end
  return out
end

--- The client's position encoding ("utf-16" when unknown).
function M.encoding(client)
  return (client and client.offset_encoding) or "utf-16"
end

--- LSP character offset of byte column `col` (0-based) on 0-based `row` of `bufnr`.
function M.char_offset(bufnr, row, col, encoding)
  if col <= 0 then
    return 0
  end
  return vim.lsp.util.character_offset(bufnr, row, col, encoding)
end

--- Byte length of the UTF-8 character starting at byte `col` (0-based) of `line`.
function M.char_len(line, col)
  local ch = line:sub(col + 1):match("^[%z\1-\127\194-\244][\128-\191]*")
  return ch and #ch or 1
end

function M.notify(msg, level)
  vim.schedule(function()
    vim.notify(msg, level or vim.log.levels.INFO, { title = "Conductor" })
  end)
end

--- Walks up from `path` looking for one of `markers`; returns the directory or nil.
function M.find_root(path, markers)
  local uv = vim.uv or vim.loop
  local dir = path
  local stat = uv.fs_stat(dir)
  if not stat or stat.type ~= "directory" then
    dir = vim.fn.fnamemodify(path, ":h")
  end
  while dir and dir ~= "" do
    for _, m in ipairs(markers) do
      if uv.fs_stat(dir .. "/" .. m) then
        return dir
      end
    end
    local parent = vim.fn.fnamemodify(dir, ":h")
    if parent == dir then
      break
    end
    dir = parent
  end
  return nil
end

return M
