-- :checkhealth conductor
local M = {}

local health = vim.health or require("health")
local start = health.start or health.report_start
local ok = health.ok or health.report_ok
local warn = health.warn or health.report_warn
local info = health.info or health.report_info
local err = health.error or health.report_error

local KNOWN = {
  tavily = true,
  brave = true,
  exa = true,
  searxng = true,
  wikipedia = true,
  arxiv = true,
  hackernews = true,
  notes = true,
}

local function run(cmd)
  local out = vim.fn.system(cmd)
  return vim.v.shell_error, out
end

--- Parses `conductor-lsp providers` (a table: provider, status, used, detail).
local function parse_providers(out)
  local rows = {}
  for line in out:gmatch("[^\n]+") do
    local name, rest = line:match("^%s*(%S+)%s+(.*)$")
    if name and KNOWN[name:lower()] then
      local status = rest:match("^not configured") and "not configured" or (rest:match("^configured") and "configured")
      local after = rest:gsub("^not configured", ""):gsub("^configured", "")
      local used, detail = after:match("^%s*(%S+)%s*(.*)$")
      table.insert(rows, { name = name:lower(), status = status, used = used, detail = detail or "", raw = line })
    end
  end
  return rows
end
M._parse_providers = parse_providers

function M.check()
  local conductor = require("conductor")
  local util = require("conductor.util")
  local cfg = conductor.config

  start("conductor: Neovim")
  local v = vim.version()
  if util.has("nvim-0.7") then
    ok(("Neovim %d.%d.%d"):format(v.major, v.minor, v.patch))
  else
    err("Neovim 0.7 or newer is required")
  end
  if conductor.is_setup() then
    ok("require('conductor').setup() was called")
  else
    info("require('conductor').setup() was not called; the defaults are used (or your vim.lsp.enable/lspconfig setup)")
  end
  local problems = conductor.validate_settings(cfg.settings)
  if #problems == 0 then
    ok("settings: " .. vim.inspect(cfg.settings, { newline = " ", indent = "" }))
  else
    for _, p in ipairs(problems) do
      warn("settings: " .. p)
    end
  end

  start("conductor: server binary")
  local exe = cfg.cmd[1]
  if vim.fn.executable(exe) ~= 1 then
    err(("`%s` was not found or is not executable"):format(exe), {
      "Build and install it: `cargo install --path .` in the Conductor repository (puts conductor-lsp in ~/.cargo/bin)",
      "or give its full path: require('conductor').setup({ cmd = { '/path/to/conductor-lsp', '--stdio' } })",
    })
    return
  end
  ok(("found %s"):format(vim.fn.exepath(exe) ~= "" and vim.fn.exepath(exe) or exe))
  local code, out = run({ exe, "--version" })
  if code == 0 then
    ok("version: " .. vim.trim(out))
  else
    err(("`%s --version` failed (exit %d): %s"):format(exe, code, vim.trim(out)))
  end

  start("conductor: providers")
  local pcode, pout = run({ exe, "providers" })
  if pcode ~= 0 then
    err(("`%s providers` failed (exit %d): %s"):format(exe, pcode, vim.trim(pout)))
  else
    local rows = parse_providers(pout)
    if #rows == 0 then
      info(vim.trim(pout))
    else
      local used = 0
      for _, r in ipairs(rows) do
        local detail = r.detail ~= "" and (": " .. r.detail) or ""
        if r.status == "configured" then
          if r.used == "yes" then
            used = used + 1
          end
          ok(("%s configured%s%s"):format(r.name, r.used == "no" and " (not used)" or "", detail))
        else
          info(("%s not configured%s"):format(r.name, detail))
        end
      end
      if used == 0 then
        err("no provider is configured and used: research will fail", {
          "the key-less providers (wikipedia, arxiv, hackernews, notes) need no setup; check `providers` in your settings",
        })
      end
    end
    local cfgfile = pout:match("config file: ([^\n]+)")
    if cfgfile then
      info("config file: " .. cfgfile)
    end
  end

  start("conductor: LLM")
  local llm = cfg.settings.llm or {}
  local backend = llm.backend or os.getenv("CONDUCTOR_LLM")
  local has_env = {
    openai = os.getenv("OPENAI_API_KEY") or os.getenv("OPENAI_BASE_URL"),
    anthropic = os.getenv("ANTHROPIC_API_KEY"),
    ollama = os.getenv("OLLAMA_HOST"),
  }
  local env = cfg.cmd_env or {}
  has_env.openai = has_env.openai or env.OPENAI_API_KEY or env.OPENAI_BASE_URL
  has_env.anthropic = has_env.anthropic or env.ANTHROPIC_API_KEY
  has_env.ollama = has_env.ollama or env.OLLAMA_HOST
  if backend == "none" then
    ok("LLM synthesis is off (llm.backend = none): reports list the retrieved sources")
  elseif backend and backend ~= "" then
    if backend == "ollama" or has_env[backend] then
      ok(("LLM back end: %s%s"):format(backend, llm.model and (" (model " .. llm.model .. ")") or ""))
    else
      warn(("LLM back end %s is selected but its credentials are not set"):format(backend), {
        backend == "openai" and "set OPENAI_API_KEY (or OPENAI_BASE_URL for a local OpenAI-compatible server)"
          or "set ANTHROPIC_API_KEY",
      })
    end
  else
    local found
    for _, name in ipairs({ "openai", "anthropic", "ollama" }) do
      if has_env[name] then
        found = name
        break
      end
    end
    if found then
      ok("LLM back end: " .. found .. " (first back end with credentials)")
    else
      ok("no LLM configured: reports list the retrieved sources without a summary (set OPENAI_API_KEY, ANTHROPIC_API_KEY or OLLAMA_HOST for one)")
    end
  end

  start("conductor: language server")
  local clients = util.get_clients("conductor")
  if #clients == 0 then
    info("no conductor client is running (it starts when a markdown or text buffer opens)")
  else
    for _, c in ipairs(clients) do
      local n = 0
      for _ in pairs(c.attached_buffers or {}) do
        n = n + 1
      end
      ok(("client %d running, root %s, %d buffer(s) attached"):format(c.id, tostring(c.config.root_dir), n))
    end
  end
end

return M
