-- :checkhealth conductor
local M = {}

local health = vim.health or require("health")
local start = health.start or health.report_start
local ok = health.ok or health.report_ok
local warn = health.warn or health.report_warn
local info = health.info or health.report_info
local err = health.error or health.report_error

local function run(cmd)
  local out = vim.fn.system(cmd)
  return vim.v.shell_error, out
end

--- Parses `conductor-lsp providers --format json`: every provider of the server's registry with its
-- status. Returns the rows ({ name, status, used, detail, fallback }) and the config file's path, or
-- nil and the reason.
local function parse_providers(out)
  local decoded, listing = pcall(vim.fn.json_decode, out)
  if not decoded or type(listing) ~= "table" or type(listing.providers) ~= "table" then
    return nil, "unexpected output: " .. vim.trim(out):sub(1, 200)
  end
  local rows = {}
  for _, p in ipairs(listing.providers) do
    table.insert(rows, {
      name = p.name,
      status = p.configured == true and "configured" or "not configured",
      used = p.used == true and "yes" or "no",
      detail = type(p.detail) == "string" and p.detail or "",
      fallback = p.default == "if_none_configured",
    })
  end
  local cfg = type(listing.config_file) == "table" and listing.config_file or nil
  return rows, cfg and ("%s (%s)"):format(cfg.path, cfg.found and "found" or "not found") or nil
end
M._parse_providers = parse_providers

local function enabled_by_vim_lsp(name)
  if not vim.lsp.config then
    return false
  end
  if vim.lsp.is_enabled then -- 0.12+
    return vim.lsp.is_enabled(name)
  end
  return type(vim.lsp._enabled_configs) == "table" and vim.lsp._enabled_configs[name] ~= nil
end

--- The server's view of a client's configuration: initializationOptions, then `settings.conductor`
-- (or the settings table itself) on top, as src/lsp reads them.
local function server_settings(init_options, settings)
  local s = type(settings) == "table" and (settings.conductor or settings) or {}
  return vim.tbl_deep_extend("force", type(init_options) == "table" and init_options or {}, s)
end

--- Where the settings come from, and what they are: each running client's configuration (what it
-- was really given), else what the next client would be given: setup()'s, else
-- vim.lsp.config("conductor") when vim.lsp.enable("conductor") was called, else the defaults.
function M.configs()
  local conductor = require("conductor")
  local util = require("conductor.util")
  local out = {}
  for _, c in ipairs(util.get_clients(conductor.name)) do
    local cfg = c.config or {}
    table.insert(out, {
      source = ("client %d"):format(c.id),
      client = c,
      cmd = cfg.cmd,
      cmd_env = cfg.cmd_env,
      settings = server_settings(cfg.init_options, cfg.settings),
    })
  end
  if #out > 0 then
    return out
  end
  local cfg, source
  if conductor.is_setup() then
    cfg, source = conductor.client_config(nil), "require('conductor').setup()"
  elseif enabled_by_vim_lsp(conductor.name) then
    cfg, source = vim.lsp.config[conductor.name] or {}, "vim.lsp.config('conductor')"
  else
    cfg, source = conductor.client_config(nil), "the defaults (setup() was not called)"
  end
  return {
    { source = source, cmd = cfg.cmd, cmd_env = cfg.cmd_env, settings = server_settings(cfg.init_options, cfg.settings) },
  }
end

local function inspect(v)
  return vim.inspect(v, { newline = " ", indent = "" })
end

function M.check()
  local conductor = require("conductor")
  local util = require("conductor.util")

  start("conductor: Neovim")
  local v = vim.version()
  if util.has("nvim-0.7") then
    ok(("Neovim %d.%d.%d"):format(v.major, v.minor, v.patch))
  else
    err("Neovim 0.7 or newer is required")
  end
  if conductor.is_setup() then
    ok("require('conductor').setup() was called")
  elseif enabled_by_vim_lsp(conductor.name) then
    ok("vim.lsp.enable('conductor') was called")
  else
    info("neither require('conductor').setup() nor vim.lsp.enable('conductor') was called: the :Conductor* commands start the server with the defaults")
  end

  start("conductor: settings")
  local configs = M.configs()
  for _, c in ipairs(configs) do
    local problems = conductor.validate_settings(c.settings)
    if #problems == 0 then
      ok(("%s: settings %s"):format(c.source, inspect(c.settings)))
    else
      warn(("%s: settings %s"):format(c.source, inspect(c.settings)), problems)
    end
  end
  local cfg = configs[1]

  start("conductor: server binary")
  local exe = type(cfg.cmd) == "table" and cfg.cmd[1] or nil
  if not exe then
    info(("%s: cmd is a function; cannot check the binary"):format(cfg.source))
    return
  end
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
  -- Ask the binary with the client's environment (cmd_env) and provider choice, so "used" is what
  -- the server does: the settings' `providers` override CONDUCTOR_PROVIDERS as in the server.
  local penv = vim.tbl_extend("force", {}, type(cfg.cmd_env) == "table" and cfg.cmd_env or {})
  local plist = cfg.settings.providers
  if type(plist) == "table" and #plist > 0 then
    penv.CONDUCTOR_PROVIDERS = table.concat(vim.tbl_map(tostring, plist), ",")
  elseif type(plist) == "string" and plist ~= "" then
    penv.CONDUCTOR_PROVIDERS = plist
  end
  local pcmd = { "env" }
  for k, val in pairs(penv) do
    table.insert(pcmd, ("%s=%s"):format(k, tostring(val)))
  end
  vim.list_extend(pcmd, { exe, "providers", "--format", "json" })
  local pcode, pout = run(pcmd)
  if pcode ~= 0 then
    err(("`%s providers` failed (exit %d): %s"):format(exe, pcode, vim.trim(pout)))
  else
    local rows, cfgfile = parse_providers(pout)
    if not rows then
      err(("`%s providers --format json`: %s"):format(exe, cfgfile))
    else
      local used = 0
      local free = {}
      for _, r in ipairs(rows) do
        local detail = r.detail ~= "" and (": " .. r.detail) or ""
        if r.fallback then
          table.insert(free, r.name)
        end
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
          ("the free providers (%s) need no setup; check `providers` in your settings"):format(table.concat(free, ", ")),
        })
      end
      if cfgfile then
        info("config file: " .. cfgfile)
      end
    end
  end

  start("conductor: LLM")
  local llm = type(cfg.settings.llm) == "table" and cfg.settings.llm or {}
  local env = type(cfg.cmd_env) == "table" and cfg.cmd_env or {}
  local backend = llm.backend or env.CONDUCTOR_LLM or os.getenv("CONDUCTOR_LLM")
  local has_env = {
    openai = os.getenv("OPENAI_API_KEY") or os.getenv("OPENAI_BASE_URL"),
    anthropic = os.getenv("ANTHROPIC_API_KEY"),
    ollama = os.getenv("OLLAMA_HOST"),
  }
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
      ok(("client %d running, root %s, %d buffer(s) attached"):format(c.id, c.config.root_dir or "none (single files)", n))
    end
  end
end

return M
