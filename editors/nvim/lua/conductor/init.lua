-- Conductor for Neovim: a thin client over the conductor-lsp language server.
-- Works on Neovim 0.7 (vim.lsp.start_client + buf_attach_client) and on current versions (vim.lsp.start).
local util = require("conductor.util")

local M = {}

M.name = "conductor"

local defaults = {
  -- The server command. `conductor-lsp` must be on PATH, or give a full path.
  cmd = { "conductor-lsp", "--stdio" },
  -- Extra environment for the server, e.g. { TAVILY_API_KEY = os.getenv("MY_TAVILY_KEY") }.
  cmd_env = nil,
  filetypes = { "markdown", "text" },
  -- The workspace root (the `notes` provider searches it) is the nearest folder holding one of these.
  root_markers = { ".conductor", ".git" },
  -- Server settings (snake_case, as in config.toml): providers, max_sources, timeout,
  -- citation_style, placement, notes_paths, cited_only, read, dead_links, cache_hours, max_cost, prices, llm = { backend, model,
  -- temperature, max_tokens, timeout, token_cap }, verify = { backend, model, timeout, max_tokens,
  -- concurrency }. Sent as initializationOptions and as
  -- workspace/didChangeConfiguration { settings = { conductor = ... } }.
  settings = {},
  -- Start the server for buffers of `filetypes` automatically.
  autostart = true,
  -- Echo the server's progress messages in the command line.
  progress = true,
  on_attach = nil,
  capabilities = nil,
}

M.config = vim.deepcopy(defaults)
M._running = {} -- request id -> { client_id, bufnr, topic, command }
M._clients_by_root = {} -- 0.7 only: root_dir -> client id
M.last_result = nil -- the last answer of conductor.research / conductor.refresh (tests and scripts read it)
M.last_error = nil

-- The server's settings schema (src/config.rs `SettingsLayer`, README "Configuration"): each key the
-- server reads, with the camelCase aliases it also accepts. The suite checks this list against both.
local SETTING_KEYS = {
  providers = "providers",
  max_sources = "max_sources",
  maxSources = "max_sources",
  timeout = "timeout",
  citation_style = "citation_style",
  citationStyle = "citation_style",
  style = "citation_style",
  placement = "placement",
  llm = "llm",
  notes_paths = "notes_paths",
  notesPaths = "notes_paths",
  cited_only = "cited_only",
  citedOnly = "cited_only",
  read = "read",
  dead_links = "dead_links",
  deadLinks = "dead_links",
  cache_hours = "cache_hours",
  cacheHours = "cache_hours",
  max_cost = "max_cost",
  maxCost = "max_cost",
  prices = "prices",
  verify = "verify",
}
local VERIFY_KEYS = {
  backend = "backend",
  model = "model",
  timeout = "timeout",
  max_tokens = "max_tokens",
  maxTokens = "max_tokens",
  concurrency = "concurrency",
}
local LLM_KEYS = {
  backend = "backend",
  model = "model",
  temperature = "temperature",
  max_tokens = "max_tokens",
  maxTokens = "max_tokens",
  timeout = "timeout",
  token_cap = "token_cap",
  tokenCap = "token_cap",
}
M._setting_keys = SETTING_KEYS
M._llm_keys = LLM_KEYS
M._verify_keys = VERIFY_KEYS

local function call(client, method, ...)
  -- Neovim 0.11 prefers method-call syntax (client:request); 0.7-0.10 use client.request.
  if util.has("nvim-0.11") then
    return client[method](client, ...)
  end
  return client[method](...)
end

--- The client configuration, usable by vim.lsp.start, vim.lsp.start_client and vim.lsp.config.
function M.client_config(root_dir)
  local cfg = M.config
  return {
    name = M.name,
    cmd = cfg.cmd,
    cmd_env = cfg.cmd_env,
    root_dir = root_dir,
    init_options = vim.deepcopy(cfg.settings),
    settings = { conductor = vim.deepcopy(cfg.settings) },
    capabilities = cfg.capabilities,
    on_attach = cfg.on_attach,
  }
end

local warned_missing = false

--- Starts (or reuses) the server for `bufnr` and attaches it. Returns the client id or nil.
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local existing = util.get_clients(M.name, bufnr)[1]
  if existing then
    return existing.id
  end
  local exe = M.config.cmd[1]
  if vim.fn.executable(exe) ~= 1 then
    if not warned_missing then
      warned_missing = true
      util.notify(
        ("Conductor: cannot find the language server `%s`. Install conductor-lsp or set `cmd` in "
          .. "require('conductor').setup(); see :checkhealth conductor"):format(exe),
        vim.log.levels.ERROR
      )
    end
    return nil
  end
  local fname = vim.api.nvim_buf_get_name(bufnr)
  local start_path = fname ~= "" and vim.fn.fnamemodify(fname, ":p") or (vim.uv or vim.loop).cwd()
  local root = util.find_root(start_path, M.config.root_markers)
    or (fname ~= "" and vim.fn.fnamemodify(fname, ":p:h"))
    or (vim.uv or vim.loop).cwd()
  local config = M.client_config(root)
  if vim.lsp.start then -- 0.8+: reuses a client with the same name and root
    return vim.lsp.start(config, { bufnr = bufnr })
  end
  local id = M._clients_by_root[root]
  local client = id and vim.lsp.get_client_by_id(id)
  if not client or client.is_stopped() then -- 0.7 only: is_stopped is a closure there
    id = vim.lsp.start_client(config)
    M._clients_by_root[root] = id
  end
  if id then
    vim.lsp.buf_attach_client(bufnr, id)
  end
  return id
end

--- The Conductor client attached to `bufnr`, starting it if needed.
function M.client(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local client = util.get_clients(M.name, bufnr)[1]
  if client then
    return client
  end
  local id = M.attach(bufnr)
  return id and vim.lsp.get_client_by_id(id) or nil
end

local function heading_text(line)
  local text = line:match("^ ? ? ?#+[ \t]+(.-)[ \t]*$")
  local hashes = line:match("^ ? ? ?(#+)[ \t]")
  if not text or not hashes or #hashes > 6 then
    return nil
  end
  text = text:gsub("[ \t]+#+$", "")
  if text == "" then
    return nil
  end
  return text
end
M._heading_text = heading_text

--- The topic as the server reads it from a selection, for the status line: markdown markers
-- dropped (quote, heading, list and task prefixes; emphasis, code and link syntax), whitespace
-- collapsed, at most 60 characters. The server's own rule is `strip_markdown` in src/lsp/scan.rs;
-- this only labels the running request, so a close match is enough.
local function topic_label(text)
  local parts = {}
  for _, raw in ipairs(vim.split(text or "", "\n", { plain = true })) do
    local line = vim.trim(raw)
    while true do
      local before = line
      line = line:gsub("^>%s*", "")
      line = heading_text(line) or line
      line = line:gsub("^[-*+]%s+", ""):gsub("^%d+[.)]%s+", ""):gsub("^%[[ xX]%]%s+", "")
      if line == before then
        break
      end
    end
    line = line:gsub("!?%[([^%]]*)%]%b()", "%1"):gsub("\\(%p)", "%1"):gsub("[*_`~]+", "")
    table.insert(parts, line)
  end
  local label = vim.trim(table.concat(parts, " "):gsub("%s+", " "))
  if vim.fn.strchars(label) > 60 then
    label = vim.fn.strcharpart(label, 0, 59) .. "…"
  end
  return label
end
M._topic_label = topic_label

--- The text from (srow, scol) to (erow, ecol) of `bufnr`: 0-based rows, byte columns, end exclusive.
local function range_text(bufnr, srow, scol, erow, ecol)
  local l = vim.api.nvim_buf_get_lines(bufnr, srow, erow + 1, false)
  if #l == 0 then
    return ""
  end
  l[#l] = l[#l]:sub(1, ecol)
  l[1] = l[1]:sub(scol + 1)
  return table.concat(l, "\n")
end

--- The topic of the report around row `row` (0-based): its "Conductor Report: <topic>" heading.
local function report_topic(bufnr, row)
  local lines = vim.api.nvim_buf_get_lines(bufnr, 0, row + 1, false)
  for r = #lines, 1, -1 do
    local t = heading_text(lines[r])
    if t and t:match("^Conductor Report: ") then
      return topic_label(t:gsub("^Conductor Report: ", ""))
    end
    if lines[r]:match("^<!%-%- conductor:report") or (r <= row and lines[r]:match("^<!%-%- /conductor:report")) then
      break -- the start of this report, or the end of an earlier one: not inside a report
    end
  end
  return nil
end

local function line_range(bufnr, row, encoding)
  local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
  return {
    start = { line = row, character = 0 },
    ["end"] = { line = row, character = util.char_offset(bufnr, row, #line, encoding) },
  }
end

--- The LSP range of the last visual selection, when it matches the command's line range.
local function visual_range(bufnr, line1, line2, encoding)
  local s = vim.api.nvim_buf_get_mark(bufnr, "<")
  local e = vim.api.nvim_buf_get_mark(bufnr, ">")
  local mode = vim.fn.visualmode()
  if mode == "v" and s[1] == line1 and e[1] == line2 then
    local srow, erow = s[1] - 1, e[1] - 1
    local eline = vim.api.nvim_buf_get_lines(bufnr, erow, erow + 1, false)[1] or ""
    local ecol = math.min(e[2], #eline)
    if vim.o.selection ~= "exclusive" and ecol < #eline then
      ecol = ecol + util.char_len(eline, ecol)
    end
    return {
      start = { line = srow, character = util.char_offset(bufnr, srow, s[2], encoding) },
      ["end"] = { line = erow, character = util.char_offset(bufnr, erow, ecol, encoding) },
    },
      range_text(bufnr, srow, s[2], erow, ecol)
  end
  -- Linewise: from the start of the first line to the end of the last.
  local last = vim.api.nvim_buf_get_lines(bufnr, line2 - 1, line2, false)[1] or ""
  return {
    start = { line = line1 - 1, character = 0 },
    ["end"] = { line = line2 - 1, character = util.char_offset(bufnr, line2 - 1, #last, encoding) },
  },
    range_text(bufnr, line1 - 1, 0, line2 - 1, #last)
end

local function describe(result, what)
  if type(result) ~= "table" or type(result.applied) ~= "boolean" then
    return what == "refresh" and "Conductor: report refreshed." or "Conductor: research finished.", vim.log.levels.INFO
  end
  local failed = {}
  for _, f in ipairs(result.failed or {}) do
    table.insert(failed, ("%s (%s)"):format(tostring(f.provider), tostring(f.error)))
  end
  if result.cancelled == true and not result.applied then
    return "Conductor: research cancelled; the buffer was not changed.", vim.log.levels.INFO
  end
  local n = tonumber(result.sources) or 0
  local sources = ("%d source%s"):format(n, n == 1 and "" or "s")
  if not result.applied then
    return ("Conductor: the report was not inserted (%s).%s"):format(
      sources,
      #failed > 0 and (" Failed: " .. table.concat(failed, "; ") .. ".") or ""
    ),
      vim.log.levels.WARN
  end
  local verb = what == "refresh" and "refreshed the report" or "inserted a report"
  if #failed > 0 then
    return ("Conductor: %s citing %s; failed: %s."):format(verb, sources, table.concat(failed, "; ")), vim.log.levels.WARN
  end
  return ("Conductor: %s citing %s."):format(verb, sources), vim.log.levels.INFO
end
M._describe = describe

-- The statusline shows M.status(): redraw it when a run starts or ends.
local function redraw_status()
  vim.schedule(function()
    pcall(vim.cmd, "redrawstatus!")
  end)
end

local function is_cancel(err)
  return err and (err.code == -32800 or tostring(err.message or ""):lower():find("cancel") ~= nil)
end

--- Sends workspace/executeCommand `command` with one argument and reports the answer.
local function run(client, bufnr, command, arg, label)
  local what = command == "conductor.refresh" and "refresh" or "research"
  local req_id
  local ok, id = call(client, "request", "workspace/executeCommand", { command = command, arguments = { arg } }, function(err, result)
    local entry = M._running[req_id]
    M._running[req_id] = nil
    redraw_status()
    if entry == nil and (err or type(result) ~= "table" or not result.applied) then
      return -- cancelled by :ConductorCancel, which already said so
    end
    if err then
      M.last_error = err
      M.last_result = nil
      if is_cancel(err) then
        util.notify("Conductor: research cancelled; the buffer was not changed.", vim.log.levels.INFO)
      else
        util.notify(("Conductor: %s failed: %s"):format(what, tostring(err.message or vim.inspect(err))), vim.log.levels.ERROR)
      end
    else
      M.last_error = nil
      M.last_result = result
      local msg, level = describe(result, what)
      util.notify(msg, level)
    end
    pcall(vim.cmd, "doautocmd <nomodeline> User ConductorDone")
  end, bufnr)
  if not ok then
    util.notify("Conductor: the language server is not running", vim.log.levels.ERROR)
    return nil
  end
  req_id = id
  M._running[req_id] = { client_id = client.id, bufnr = bufnr, topic = label, command = command }
  redraw_status()
  return req_id
end

--- :ConductorResearch. opts: { range = 0|1|2, line1, line2, args = "topic" }.
-- Returns the request id, or nil when nothing was started.
function M.research(opts)
  opts = opts or {}
  local bufnr = vim.api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if not client then
    return nil
  end
  local enc = util.encoding(client)
  local topic = opts.args and vim.trim(opts.args) or ""
  local range, label
  if opts.range and opts.range > 0 then
    local text
    range, text = visual_range(bufnr, opts.line1, opts.line2, enc)
    label = topic_label(topic ~= "" and topic or text)
  else
    local row = vim.api.nvim_win_get_cursor(0)[1] - 1
    if topic == "" then
      -- The heading under the cursor (or the nearest one above it) is the topic.
      local lines = vim.api.nvim_buf_get_lines(bufnr, 0, row + 1, false)
      for r = row, 0, -1 do
        local h = heading_text(lines[r + 1])
        if h then
          topic, row = h, r
          break
        end
      end
      if topic == "" then
        util.notify(
          "Conductor: select a topic (visual mode, then :ConductorResearch), put the cursor under a heading, or run :ConductorResearch <topic>",
          vim.log.levels.WARN
        )
        return nil
      end
    end
    range = line_range(bufnr, row, enc)
  end
  local arg = { uri = vim.uri_from_bufnr(bufnr), range = range }
  if topic ~= "" then
    arg.topic = topic
  end
  if opts.placement then
    arg.placement = opts.placement
  end
  return run(client, bufnr, "conductor.research", arg, label or topic_label(topic))
end

--- :ConductorRefresh: refresh the report under the cursor (or in the given range).
function M.refresh(opts)
  opts = opts or {}
  local bufnr = vim.api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if not client then
    return nil
  end
  local enc = util.encoding(client)
  local range
  local row = vim.api.nvim_win_get_cursor(0)[1] - 1
  if opts.range and opts.range > 0 then
    range = visual_range(bufnr, opts.line1, opts.line2, enc)
    row = opts.line2 - 1
  else
    local cur = vim.api.nvim_win_get_cursor(0)
    local pos = { line = cur[1] - 1, character = util.char_offset(bufnr, cur[1] - 1, cur[2], enc) }
    range = { start = pos, ["end"] = pos }
  end
  local label = report_topic(bufnr, row)
  return run(client, bufnr, "conductor.refresh", { uri = vim.uri_from_bufnr(bufnr), range = range }, label)
end

--- :ConductorCancel[!]: cancel research for the current buffer (with !: all research).
-- Says what happened: cancelled, or that no research was running (the server answers
-- conductor.cancel with how many runs it stopped, which covers runs started by code actions).
function M.cancel(all)
  local bufnr = vim.api.nvim_get_current_buf()
  local clients = all and util.get_clients(M.name) or util.get_clients(M.name, bufnr)
  local args = all and {} or { { uri = vim.uri_from_bufnr(bufnr) } }
  -- Requests this plugin sent are also cancelled with $/cancelRequest. Neovim 0.7 drops the
  -- server's RequestCancelled answer without calling the handler, so they end here.
  local n = 0
  for id, r in pairs(M._running) do
    if all or r.bufnr == bufnr then
      local client = vim.lsp.get_client_by_id(r.client_id)
      if client then
        call(client, "cancel_request", id)
      end
      M._running[id] = nil
      n = n + 1
    end
  end
  local function cancelled()
    redraw_status()
    M.last_result = nil
    M.last_error = { code = -32800, message = "cancelled" }
    util.notify("Conductor: research cancelled; the buffer was not changed.", vim.log.levels.INFO)
    pcall(vim.cmd, "doautocmd <nomodeline> User ConductorDone")
  end
  local function nothing()
    util.notify(
      all and "Conductor: no research is running" or "Conductor: no research is running in this buffer",
      vim.log.levels.INFO
    )
  end
  local pending, stopped = #clients, 0
  local function answered(err, result)
    pending = pending - 1
    if not err and type(result) == "table" then
      stopped = stopped + (tonumber(result.cancelled) or 0)
    end
    if pending == 0 and n == 0 then
      if stopped > 0 then
        cancelled()
      else
        nothing()
      end
    end
  end
  for _, client in ipairs(clients) do
    local ok = call(client, "request", "workspace/executeCommand", { command = "conductor.cancel", arguments = args }, answered, bufnr)
    if not ok then
      answered(true)
    end
  end
  if n > 0 then
    cancelled()
  elseif #clients == 0 then
    nothing()
  end
end

--- A short string for the statusline: `Conductor: researching “topic”` (and how many more run),
-- or "" when nothing runs.
function M.status()
  local ids = vim.tbl_keys(M._running)
  if #ids == 0 then
    return ""
  end
  table.sort(ids)
  local r = M._running[ids[1]]
  local verb = r.command == "conductor.refresh" and "refreshing" or "researching"
  local what = (r.topic and r.topic ~= "") and ("“" .. r.topic .. "”")
    or (r.command == "conductor.refresh" and "the report" or "the selection")
  local more = #ids > 1 and (" (+%d more)"):format(#ids - 1) or ""
  return ("Conductor: %s %s%s"):format(verb, what, more)
end

local function echo_progress(msg)
  if not M.config.progress then
    return
  end
  vim.api.nvim_echo({ { msg, "ModeMsg" } }, false, {})
end

local function setup_progress()
  local group = vim.api.nvim_create_augroup("ConductorProgress", { clear = true })
  if util.has("nvim-0.10") then
    vim.api.nvim_create_autocmd("LspProgress", {
      group = group,
      callback = function(ev)
        local data = ev.data or {}
        local client = data.client_id and vim.lsp.get_client_by_id(data.client_id)
        if not client or client.name ~= M.name then
          return
        end
        local v = (data.params or {}).value or {}
        local text = table.concat(vim.tbl_filter(function(s)
          return s and s ~= ""
        end, { v.title, v.message, v.percentage and (v.percentage .. "%%") or nil }), " ")
        echo_progress("Conductor: " .. (v.kind == "end" and "done" or text))
      end,
    })
  else
    vim.api.nvim_create_autocmd("User", {
      group = group,
      pattern = "LspProgressUpdate",
      callback = function()
        for _, m in ipairs(vim.lsp.util.get_progress_messages()) do
          if m.name == M.name then
            local text = table.concat(vim.tbl_filter(function(s)
              return s and s ~= ""
            end, { m.title, m.message, m.percentage and (m.percentage .. "%%") or nil }), " ")
            echo_progress("Conductor: " .. (m.done and "done" or text))
          end
        end
      end,
    })
  end
end

-- The server's provider names and aliases, in the order of its registry (src/providers/registry.rs);
-- test/conductor_test.lua checks them against `conductor-lsp providers --format json`.
local PROVIDERS = { "tavily", "brave", "exa", "searxng", "wikipedia", "hackernews", "arxiv", "notes" }
local PROVIDER_ALIASES = { searx = "searxng" }
M._providers = PROVIDERS
M._provider_aliases = PROVIDER_ALIASES

local function positive(v)
  return type(v) == "number" and v > 0
end

-- `prices`: { <provider> = US dollars per search, ["backend:model"] = { input = ..., output = ... } (US
-- dollars per million tokens) }, as the server checks them (src/config.rs `parse_prices`).
local function validate_prices(prices, problems)
  if type(prices) ~= "table" then
    table.insert(problems, "prices must be a table: { brave = 0.005, [\"openai:gpt-4o-mini\"] = { input = ..., output = ... } }")
    return
  end
  local function usd(v, max)
    return type(v) == "number" and v >= 0 and v <= max
  end
  for k, v in pairs(prices) do
    local key = tostring(k)
    local backend, model = key:match("^%s*([^:]-)%s*:%s*(.-)%s*$")
    if backend then
      if not vim.tbl_contains({ "openai", "anthropic", "ollama" }, backend:lower()) or model == "" then
        table.insert(problems, ("prices[%q]: an LLM price is keyed \"backend:model\" (openai, anthropic or ollama)"):format(key))
      elseif type(v) ~= "table" or not usd(v.input, 1000) or not usd(v.output, 1000) or vim.tbl_count(v) ~= 2 then
        table.insert(problems, ("prices[%q] must be { input = ..., output = ... }, US dollars per million tokens (0 to 1000)"):format(key))
      end
    elseif not vim.tbl_contains(PROVIDERS, vim.trim(key):lower()) and not PROVIDER_ALIASES[vim.trim(key):lower()] then
      table.insert(problems, ("prices: unknown provider %q (known: %s)"):format(key, table.concat(PROVIDERS, ", ")))
    elseif not usd(v, 10) then
      table.insert(problems, ("prices.%s must be a number of US dollars per search from 0 to 10"):format(key))
    end
  end
end

local function validate_llm(llm, problems)
  if type(llm) ~= "table" then
    table.insert(problems, "llm must be a table: { backend = ..., model = ... }")
    return
  end
  for k, v in pairs(llm) do
    local key = LLM_KEYS[k]
    if not key then
      table.insert(problems, ("unknown setting llm.%s (known: backend, model, temperature, max_tokens, timeout, token_cap)"):format(tostring(k)))
    elseif key == "backend" and not vim.tbl_contains({ "openai", "anthropic", "ollama", "none" }, v) then
      table.insert(problems, ("llm.backend must be openai, anthropic, ollama or none, not %q"):format(tostring(v)))
    elseif key == "model" and type(v) ~= "string" then
      table.insert(problems, "llm.model must be a string")
    elseif key == "temperature" and (type(v) ~= "number" or v < 0) then
      table.insert(problems, "llm.temperature must be a number, 0 or more")
    elseif (key == "max_tokens" or key == "timeout" or key == "token_cap") and not positive(v) then
      table.insert(problems, ("llm.%s must be a positive number"):format(key))
    end
  end
end

--- Validates a settings table (the server's snake_case keys; its camelCase aliases are accepted too).
-- Returns a list of problems (empty when the server will take the settings).
function M.validate_settings(settings)
  local problems = {}
  if type(settings) ~= "table" then
    return { "settings must be a table" }
  end
  for k, v in pairs(settings) do
    local key = SETTING_KEYS[k]
    if not key then
      table.insert(
        problems,
        ("unknown setting %q (known: %s)"):format(
          tostring(k),
          "providers, max_sources, timeout, citation_style, placement, llm, notes_paths, cited_only, read, dead_links, cache_hours, max_cost, prices, verify"
        )
      )
    elseif key == "citation_style" and not vim.tbl_contains({ "links", "numbered", "footnotes" }, v) then
      table.insert(problems, ("citation_style must be links, numbered or footnotes, not %q"):format(tostring(v)))
    elseif key == "placement" and not vim.tbl_contains({ "below", "replace", "end" }, v) then
      table.insert(problems, ("placement must be below, replace or end, not %q"):format(tostring(v)))
    elseif key == "max_sources" and not (positive(v) and v % 1 == 0 and v <= 100) then
      table.insert(problems, ("%s must be a whole number from 1 to 100"):format(k))
    elseif key == "timeout" and not (type(v) == "number" and v >= 0.1 and v <= 600) then
      table.insert(problems, "timeout must be a number of seconds from 0.1 to 600")
    elseif key == "providers" then
      local list = type(v) == "string" and vim.split(v, ",", { trimempty = true }) or v
      if type(list) ~= "table" then
        table.insert(problems, "providers must be a list of provider names")
      else
        for _, name in ipairs(list) do
          local n = vim.trim(tostring(name)):lower()
          if not vim.tbl_contains(PROVIDERS, n) and not PROVIDER_ALIASES[n] then
            table.insert(problems, ("unknown provider %q (known: %s)"):format(tostring(name), table.concat(PROVIDERS, ", ")))
          end
        end
      end
    elseif key == "notes_paths" and (type(v) ~= "table" or #vim.tbl_filter(function(x)
      return type(x) ~= "string"
    end, v) > 0) then
      table.insert(problems, "notes_paths must be a list of folder paths")
    elseif key == "cited_only" and type(v) ~= "boolean" then
      table.insert(problems, "cited_only must be true or false")
    elseif key == "read" and not (type(v) == "number" and v >= 0 and v <= 50 and v % 1 == 0) then
      table.insert(problems, "read must be a whole number from 0 to 50")
    elseif key == "dead_links" and not vim.tbl_contains({ "drop", "mark", "keep" }, v) then
      table.insert(problems, ("dead_links must be drop, mark or keep, not %q"):format(tostring(v)))
    elseif key == "cache_hours" and not (type(v) == "number" and v >= 0 and v <= 8784) then
      table.insert(problems, "cache_hours must be a number of hours from 0 to 8784 (0: no cache)")
    elseif key == "max_cost" and not (type(v) == "number" and v >= 0 and v <= 10000) then
      table.insert(problems, "max_cost must be a number of US dollars from 0 to 10000")
    elseif key == "prices" then
      validate_prices(v, problems)
    elseif key == "verify" then
      if type(v) ~= "table" then
        table.insert(problems, "verify must be a table")
      else
        for vk in pairs(v) do
          if not VERIFY_KEYS[vk] then
            table.insert(problems, ("unknown verify setting %q"):format(tostring(vk)))
          end
        end
      end
    elseif key == "llm" then
      validate_llm(v, problems)
    end
  end
  table.sort(problems)
  return problems
end

--- Applies new settings to running clients (workspace/didChangeConfiguration).
function M.update_settings(settings)
  M.config.settings = vim.tbl_deep_extend("force", M.config.settings, settings or {})
  for _, client in ipairs(util.get_clients(M.name)) do
    client.config.settings = { conductor = vim.deepcopy(M.config.settings) }
    call(client, "notify", "workspace/didChangeConfiguration", { settings = { conductor = vim.deepcopy(M.config.settings) } })
  end
end

local did_setup = false

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts or {})
  if opts and opts.cmd then
    M.config.cmd = opts.cmd -- lists are replaced, not merged
  end
  if opts and opts.filetypes then
    M.config.filetypes = opts.filetypes
  end
  if type(M.config.cmd) == "string" then
    M.config.cmd = { M.config.cmd, "--stdio" }
  end
  local problems = M.validate_settings(M.config.settings)
  if #problems > 0 then
    util.notify("Conductor: " .. table.concat(problems, "; "), vim.log.levels.WARN)
  end
  did_setup = true
  setup_progress()
  local group = vim.api.nvim_create_augroup("ConductorAutostart", { clear = true })
  if M.config.autostart then
    vim.api.nvim_create_autocmd("FileType", {
      group = group,
      pattern = M.config.filetypes,
      callback = function(ev)
        if vim.bo[ev.buf].buftype == "" then
          M.attach(ev.buf)
        end
      end,
    })
    -- Buffers already open when setup() runs.
    for _, b in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_is_loaded(b) and vim.tbl_contains(M.config.filetypes, vim.bo[b].filetype) and vim.bo[b].buftype == "" then
        M.attach(b)
      end
    end
  end
  return M
end

function M.is_setup()
  return did_setup
end

return M
