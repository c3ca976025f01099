-- Headless end-to-end test of the Conductor Neovim plugin against the real conductor-lsp and
-- loopback providers, on every Neovim run.sh finds (Debian's 0.7.2, 0.11.4 from PyPI):
--   nvim --headless -u NONE -i NONE -n --cmd "set rtp^=<plugin>" -c "luafile conductor_test.lua"
-- Env: CONDUCTOR_BIN, CONDUCTOR_TEST_DIR (scratch folder), CONDUCTOR_TEST_RESULTS (JSON out),
--      CONDUCTOR_TEST_SLOW (seconds the loopback waits on "slow" queries).
local here = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h")
local H = dofile(here .. "/harness.lua") -- first: it watches vim.notify and vim.deprecate
local test, check, lines, out = H.test, H.check, H.lines, H.out
local plugin_dir = vim.fn.fnamemodify(here, ":h")
local repo = vim.fn.fnamemodify(plugin_dir, ":h:h")

local bin = assert(os.getenv("CONDUCTOR_BIN"), "CONDUCTOR_BIN is not set")
local dir = assert(os.getenv("CONDUCTOR_TEST_DIR"), "CONDUCTOR_TEST_DIR is not set")
local slow = tonumber(os.getenv("CONDUCTOR_TEST_SLOW") or "8")
local uv = vim.uv or vim.loop

vim.cmd("filetype on")
vim.cmd("runtime! plugin/conductor.lua")
local conductor = require("conductor")
-- max_sources = 2 is checked on the server's answer: the settings reach the server.
conductor.setup({ cmd = { bin, "--stdio" }, progress = false, settings = { max_sources = 2, cited_only = false } })

local function wait_done(timeout)
  return vim.wait(timeout or 30000, function()
    return next(conductor._running) == nil
  end, 50)
end

local function find(bufnr, pred, from)
  for i, l in ipairs(lines(bufnr)) do
    if i >= (from or 1) and pred(l) then
      return i
    end
  end
end

local function unescaped(l)
  return (l:gsub("\\", ""))
end

test("plugin logic: headings, answers, provider table, settings", function()
  local h = conductor._heading_text
  check(h("## Async runtimes ##") == "Async runtimes", "closing hashes")
  check(h("   # Spaced") == "Spaced", "indented heading")
  check(h("####### seven") == nil and h("#tag") == nil and h("## ") == nil and h("text") == nil, "non-headings")
  local msg, level = conductor._describe({ applied = true, sources = 3, failed = {} })
  check(msg == "Conductor: inserted a report citing 3 sources." and level == vim.log.levels.INFO, msg)
  msg, level = conductor._describe({ applied = true, sources = 1, failed = { { provider = "brave", error = "rate limited" } } })
  check(msg:find("brave (rate limited)", 1, true) and level == vim.log.levels.WARN, msg)
  msg, level = conductor._describe({ applied = false, cancelled = true, sources = 0, failed = {} })
  check(msg:find("cancelled", 1, true) and level == vim.log.levels.INFO, msg)
  msg, level = conductor._describe({ applied = false, sources = 0, failed = {} })
  check(msg:find("not inserted", 1, true) and level == vim.log.levels.WARN, msg)
  local rows, cfgfile = require("conductor.health")._parse_providers(vim.fn.json_encode({
    providers = {
      { name = "tavily", configured = false, used = false, detail = "set TAVILY_API_KEY", default = "if_configured" },
      { name = "wikipedia", configured = true, used = true, detail = "no key needed", default = "if_none_configured" },
      { name = "notes", configured = true, used = false, detail = "searches /x", default = "if_named" },
    },
    config_file = { path = "/c/config.toml", found = false },
  }))
  check(rows and #rows == 3, "3 provider rows", rows)
  check(rows[1].name == "tavily" and rows[1].status == "not configured" and rows[1].detail == "set TAVILY_API_KEY", "tavily row", rows[1])
  check(rows[2].status == "configured" and rows[2].used == "yes" and rows[2].fallback, "wikipedia row", rows[2])
  check(cfgfile == "/c/config.toml (not found)", "config file", cfgfile)
  check(require("conductor.health")._parse_providers("provider status\n") == nil, "text is not the JSON listing")
  local v = conductor.validate_settings
  check(#v({ max_sources = 5, citation_style = "numbered", providers = { "arxiv" } }) == 0, "valid settings")
  check(#v({ cited_only = true, notes_paths = { "/n" }, llm = { backend = "ollama", model = "m", token_cap = 9 } }) == 0,
    "cited_only, notes_paths and llm are settings", v({ cited_only = true, notes_paths = { "/n" }, llm = { backend = "ollama" } }))
  check(#v({ maxSources = 5, citedOnly = true, citationStyle = "links", providers = "wikipedia,arxiv" }) == 0,
    "the server's camelCase aliases and comma lists are accepted", v({ maxSources = 5, citedOnly = true }))
  local bad = v({ max_source = 5, placement = "top", cited_only = "yes", providers = { "google" }, llm = { backend = "gpt", temp = 1 } })
  check(#bad == 6, "six problems", bad)
  check(table.concat(bad, "\n"):find("unknown setting \"max_source\"", 1, true), "names the unknown key", bad)
  check(#v({ max_sources = 101 }) == 1 and #v({ timeout = 0 }) == 1, "ranges as in the server")
  check(#v({ max_cost = 0.05, prices = { brave = 0.004, ["openai:gpt-4o-mini"] = { input = 1, output = 2 } } }) == 0,
    "max_cost and prices are settings", v({ max_cost = 0.05, prices = { brave = 0.004 } }))
  local bad_prices = v({ prices = { bravee = 0.001, exa = "cheap", ["gpt:x"] = { input = 1, output = 2 }, ["openai:m"] = { input = 1 } } })
  check(#bad_prices == 4, "four bad prices", bad_prices)
  local label = conductor._topic_label
  check(label("  async   runtimes\n in **Rust**  ") == "async runtimes in Rust", "whitespace and emphasis", label("  async   runtimes\n in **Rust**  "))
  check(label("- [x] read [the book](https://x.y/z) on `tokio`") == "read the book on tokio", "list, task, link, code",
    label("- [x] read [the book](https://x.y/z) on `tokio`"))
  check(label("## Structured concurrency") == "Structured concurrency", "heading marks")
  check(vim.fn.strchars(label(string.rep("é", 80))) == 60, "at most 60 characters")
end)

-- The server's registry of providers, as `conductor-lsp providers --format json` prints it: the
-- plugin's names and aliases (setup() validation) must be exactly these, and :checkhealth reads them.
test("the plugin's provider names are the server's registry (providers --format json)", function()
  local scratch = dir .. "/registry-home"
  vim.fn.mkdir(scratch, "p")
  -- A clean environment and config folder: the registry does not depend on them.
  local listed = vim.fn.system({
    "env", "-i", "PATH=" .. (os.getenv("PATH") or ""), "HOME=" .. scratch, "XDG_CONFIG_HOME=" .. scratch,
    bin, "providers", "--format", "json",
  })
  check(vim.v.shell_error == 0, "providers --format json failed", listed)
  local listing = vim.fn.json_decode(listed)
  local names, aliases = {}, {}
  for _, p in ipairs(listing.providers) do
    table.insert(names, p.name)
    for _, a in ipairs(p.aliases) do
      aliases[a] = p.name
    end
  end
  check(#names > 0, "no provider listed", listed)
  check(vim.deep_equal(names, conductor._providers), "the plugin's provider names differ from the registry",
    names, conductor._providers)
  check(vim.deep_equal(aliases, conductor._provider_aliases), "the plugin's provider aliases differ from the registry",
    aliases, conductor._provider_aliases)
  for _, n in ipairs(vim.list_extend(vim.deepcopy(names), vim.tbl_keys(aliases))) do
    local problems = conductor.validate_settings({ providers = { n } })
    check(#problems == 0, "a provider the server knows is rejected", n, problems)
  end
  local rows = require("conductor.health")._parse_providers(listed)
  check(rows and #rows == #names, ":checkhealth does not read every provider", rows)
end)

-- The server's settings, read from its source and README: the plugin must know every key (and
-- no other), so setup() and :checkhealth neither reject a real setting nor accept a typo.
test("the plugin's settings keys are the server's (src/config.rs, README)", function()
  local src = table.concat(vim.fn.readfile(repo .. "/src/config.rs"), "\n")
  local function struct_keys(name)
    local body = src:match("pub struct " .. name .. " {(.-)\n}")
    check(body, "struct " .. name .. " not found in src/config.rs")
    local keys = {}
    for attrs, field in body:gmatch("([^;]-)pub ([%w_]+):") do
      keys[field] = field
      for alias in attrs:gmatch('alias = "([%w_]+)"') do
        keys[alias] = field
      end
    end
    return keys
  end
  check(vim.deep_equal(struct_keys("SettingsLayer"), conductor._setting_keys), "settings keys differ from SettingsLayer",
    struct_keys("SettingsLayer"), conductor._setting_keys)
  check(vim.deep_equal(struct_keys("LlmLayer"), conductor._llm_keys), "llm keys differ from LlmLayer",
    struct_keys("LlmLayer"), conductor._llm_keys)
  check(vim.deep_equal(struct_keys("VerifyLayer"), conductor._verify_keys), "verify keys differ from VerifyLayer",
    struct_keys("VerifyLayer"), conductor._verify_keys)
  -- README's config.toml example names every key.
  local readme = table.concat(vim.fn.readfile(repo .. "/README.md"), "\n")
  local toml = readme:match("```toml\n# ~/.config/conductor/config.toml\n(.-)```")
  check(toml, "no config.toml example in README")
  local section, seen = "", {}
  for line in toml:gmatch("[^\n]+") do
    local header = line:match("^%[(%w+)%]")
    if header then
      section = header
      seen[#seen + 1] = header
    end
    local key = line:match("^([%w_]+)%s*=")
    if key then
      seen[#seen + 1] = section == "" and key or (section .. "." .. key)
      local known = section == "" and conductor._setting_keys[key] == key
        or (section == "llm" and conductor._llm_keys[key] == key)
        or (section == "verify" and conductor._verify_keys[key] == key)
        or (section == "prices" and vim.tbl_contains(conductor._providers, key))
      check(known, "README's " .. seen[#seen] .. " is not a plugin setting")
    end
  end
  for k, canonical in pairs(conductor._setting_keys) do
    if k == canonical and k ~= "llm" and k ~= "verify" then
      check(vim.tbl_contains(seen, k), "README's config.toml does not show " .. k, seen)
    end
  end
  local doc = table.concat(vim.fn.readfile(plugin_dir .. "/doc/conductor.txt"), "\n")
  for k, canonical in pairs(conductor._setting_keys) do
    if k == canonical then
      check(doc:find("\n  " .. k .. " ", 1, true), ":help conductor-options does not list " .. k)
    end
  end
end)

test(":help conductor opens the plugin's help, and the shipped doc/tags is current", function()
  local ok, e = pcall(vim.cmd, "help conductor")
  check(ok, ":help conductor failed", e)
  check(vim.bo.buftype == "help", "not a help buffer", vim.bo.buftype)
  check(uv.fs_realpath(vim.api.nvim_buf_get_name(0)) == uv.fs_realpath(plugin_dir .. "/doc/conductor.txt"),
    "opened another file", vim.api.nvim_buf_get_name(0))
  check(vim.api.nvim_get_current_line():find("*conductor*", 1, true), "cursor not on the tag", vim.api.nvim_get_current_line())
  -- Every link to one of the plugin's own tags resolves.
  local doc = table.concat(vim.fn.readfile(plugin_dir .. "/doc/conductor.txt"), "\n")
  for tag in doc:gmatch("|([^|%s]+)|") do
    if tag:find("^conductor") or tag:find("^:Conductor") then
      check(pcall(vim.cmd, "help " .. tag), "no help for |" .. tag .. "|")
    end
  end
  vim.cmd("helpclose")
  -- doc/tags is what :helptags makes of doc/*.txt now.
  local tmp = vim.fn.tempname()
  vim.fn.mkdir(tmp, "p")
  for _, f in ipairs(vim.fn.glob(plugin_dir .. "/doc/*.txt", false, true)) do
    vim.fn.writefile(vim.fn.readfile(f, "b"), tmp .. "/" .. vim.fn.fnamemodify(f, ":t"), "b")
  end
  vim.cmd("helptags " .. vim.fn.fnameescape(tmp))
  local want, have = vim.fn.readfile(tmp .. "/tags", "b"), vim.fn.readfile(plugin_dir .. "/doc/tags", "b")
  vim.fn.delete(tmp, "rf")
  check(vim.deep_equal(want, have), "doc/tags is stale: run `nvim --headless -u NONE -c 'helptags editors/nvim/doc' -c q`", want, have)
end)

-- The note: a topic to select, a heading topic, and a slow topic for the cancel test.
local note = dir .. "/note.md"
local original = {
  "# Design notes",
  "",
  "We should look at async runtimes in Rust before choosing one.",
  "",
  "## Structured concurrency",
  "",
  "A slow topic that will be cancelled",
  "",
  "The end.",
}
vim.fn.writefile(original, note)
vim.cmd("edit " .. vim.fn.fnameescape(note))
local buf = vim.api.nvim_get_current_buf()

test("server starts and attaches to a markdown buffer", function()
  check(vim.bo[buf].filetype == "markdown", "filetype is " .. vim.bo[buf].filetype)
  local ok = vim.wait(10000, function()
    local c = require("conductor.util").get_clients("conductor", buf)[1]
    return c ~= nil and c.initialized ~= false and (c.server_capabilities ~= nil or c.resolved_capabilities ~= nil)
  end, 50)
  check(ok, "no initialized conductor client attached")
end)

local report_at
test(":ConductorResearch on a visual selection inserts the report under it", function()
  -- Select "async runtimes in Rust" (charwise) on line 3, as a user would.
  vim.api.nvim_win_set_cursor(0, { 3, 0 })
  local col = original[3]:find("async runtimes in Rust", 1, true) - 1
  vim.api.nvim_win_set_cursor(0, { 3, col })
  vim.cmd("normal! v" .. (#"async runtimes in Rust" - 1) .. "l\27")
  check(vim.fn.visualmode() == "v", "visual mode not recorded")
  vim.cmd("'<,'>ConductorResearch")
  check(next(conductor._running) ~= nil, "no request started")
  local status = conductor.status() -- checked last, so a wrong label fails only this test
  check(wait_done(30000), "research did not finish in 30 s")
  check(conductor.status() == "", "status after the run", conductor.status())
  local r = conductor.last_result
  check(conductor.last_error == nil, "server error", conductor.last_error)
  check(type(r) == "table" and r.applied == true, "result not applied", r)
  check(r.sources == 2, "expected 2 sources (max_sources = 2 in setup())", r)
  local l = lines(buf)
  out("  buffer after research:\n    " .. table.concat(l, "\n    "))
  for i = 1, 3 do
    check(l[i] == original[i], "line " .. i .. " changed", l[i])
  end
  report_at = find(buf, function(s)
    return s:find("Conductor Report", 1, true) ~= nil
  end)
  check(report_at and report_at > 3, "no 'Conductor Report' heading under the selection", l)
  check(l[report_at]:find("async runtimes in Rust", 1, true), "report title does not name the topic", l[report_at])
  local next_heading = find(buf, function(s)
    return s == "## Structured concurrency"
  end)
  check(next_heading and next_heading > report_at, "the report is not between the selection and the next section", l)
  local cit = find(buf, function(s)
    return unescaped(s):find("[Tokio 1.0 released](https://tokio.rs/blog/2020-12-tokio-1-0)", 1, true) ~= nil
  end, report_at)
  check(cit and cit < next_heading, "no [Tokio 1.0 released](https://tokio.rs/...) citation in the report", l)
  check(find(buf, function(s)
    return unescaped(s):find("Tokio (software)", 1, true) ~= nil and s:find("wikipedia.org", 1, true) ~= nil
  end, report_at), "no Wikipedia citation in the report", l)
  -- The original text after the selection is still there, once.
  local tail = 0
  for _, s in ipairs(l) do
    if s == "The end." then
      tail = tail + 1
    end
  end
  check(tail == 1, "the text after the report was lost or duplicated", l)
  check(status == "Conductor: researching “async runtimes in Rust”", "the status line does not name the topic", status)
end)

test("hover on a citation shows the source's title", function()
  local l = lines(buf)
  local row = find(buf, function(s)
    return s:find("https://tokio.rs/blog/2020-12-tokio-1-0", 1, true) ~= nil
  end, report_at or 1)
  check(row, "no citation line to hover", l)
  local col = l[row]:find("https://tokio.rs", 1, true) + 3
  vim.api.nvim_win_set_cursor(0, { row, col })
  local client = require("conductor.util").get_clients("conductor", buf)[1]
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  local res = vim.lsp.buf_request_sync(buf, "textDocument/hover", params, 5000) or {}
  local text
  for _, r in pairs(res) do
    if r.result and r.result.contents then
      local c = r.result.contents
      text = type(c) == "string" and c or c.value or vim.inspect(c)
    end
  end
  check(text, "no hover", res)
  check(text:find("Tokio 1.0 released", 1, true), "hover does not show the title", text)
  check(text:find("tokio.rs", 1, true), "hover does not show the URL", text)
  -- The user-facing path (K): vim.lsp.buf.hover() opens a floating preview with the same text.
  vim.lsp.buf.hover()
  local float_text
  vim.wait(5000, function()
    for _, w in ipairs(vim.api.nvim_list_wins()) do
      if vim.api.nvim_win_get_config(w).relative ~= "" then
        float_text = table.concat(vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(w), 0, -1, false), "\n")
        return true
      end
    end
    return false
  end, 50)
  check(float_text and float_text:find("Tokio 1.0 released", 1, true), "the hover float does not show the title", float_text)
  for _, w in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(w).relative ~= "" then
      vim.api.nvim_win_close(w, true)
    end
  end
end)

test(":ConductorResearch with the cursor on a heading researches the heading", function()
  local row = find(buf, function(s)
    return s == "## Structured concurrency"
  end)
  check(row, "heading missing")
  vim.api.nvim_win_set_cursor(0, { row, 3 })
  vim.cmd("ConductorResearch")
  local status = conductor.status()
  check(wait_done(30000), "research did not finish in 30 s")
  check(conductor.last_error == nil, "server error", conductor.last_error)
  local r = conductor.last_result
  check(type(r) == "table" and r.applied == true, "result not applied", r)
  local l = lines(buf)
  check(l[row] == "## Structured concurrency", "the heading changed", l[row])
  local rep = find(buf, function(s)
    return s:find("Conductor Report", 1, true) ~= nil and s:find("Structured concurrency", 1, true) ~= nil
  end, row)
  check(rep and rep > row, "no report for the heading under it", l)
  check(status == "Conductor: researching “Structured concurrency”", "the status line does not name the heading", status)
end)

test(":ConductorCancel stops a slow run and leaves the buffer unchanged", function()
  local before = lines(buf)
  local row = find(buf, function(s)
    return s == "A slow topic that will be cancelled"
  end)
  check(row, "slow topic line missing")
  vim.cmd(("%d,%dConductorResearch"):format(row, row))
  check(next(conductor._running) ~= nil, "no request started")
  local status = conductor.status()
  local started = uv.now()
  vim.wait(1500, function()
    return false
  end, 50)
  check(next(conductor._running) ~= nil, "the slow run finished before it could be cancelled", conductor.last_result)
  vim.cmd("ConductorCancel")
  check(wait_done(5000), "the request did not end within 5 s of :ConductorCancel")
  check(conductor.last_error ~= nil and conductor.last_error.code == -32800, "no cancellation reported", conductor.last_error)
  -- Wait until the slow provider would have answered, then check nothing arrived.
  local remaining = slow * 1000 - (uv.now() - started) + 2000
  if remaining > 0 then
    vim.wait(remaining, function()
      return false
    end, 100)
  end
  check(vim.deep_equal(lines(buf), before), "the buffer changed after cancelling", lines(buf))
  check(status == "Conductor: researching “A slow topic that will be cancelled”", "the status line does not name the lines", status)
end)

test(":ConductorCancel with nothing running says so", function()
  check(next(conductor._running) == nil, "something is still running", conductor._running)
  local before, from = lines(buf), #H.notes
  vim.cmd("ConductorCancel")
  local n = H.wait_note("^Conductor: no research is running in this buffer$", from)
  check(n, "no answer to :ConductorCancel", vim.list_slice(H.notes, from + 1))
  vim.cmd("ConductorCancel!")
  check(H.wait_note("^Conductor: no research is running$", from), "no answer to :ConductorCancel!", vim.list_slice(H.notes, from + 1))
  for i = from + 1, #H.notes do
    check(not H.notes[i].msg:find("cancelled", 1, true), "claims to have cancelled something", H.notes[i].msg)
  end
  check(vim.deep_equal(lines(buf), before), "the buffer changed")
end)

test(":ConductorRefresh refreshes the report in place", function()
  local l = lines(buf)
  local row = find(buf, function(s)
    return s:find("https://tokio.rs/blog/2020-12-tokio-1-0", 1, true) ~= nil
  end)
  check(row, "no report to refresh")
  local count_before = #vim.tbl_filter(function(s)
    return s:find("Conductor Report", 1, true) ~= nil
  end, l)
  vim.api.nvim_win_set_cursor(0, { row, 0 })
  vim.cmd("ConductorRefresh")
  local status = conductor.status()
  check(wait_done(30000), "refresh did not finish in 30 s")
  check(conductor.last_error == nil, "server error", conductor.last_error)
  local r = conductor.last_result
  check(type(r) == "table" and r.applied == true, "refresh not applied", r)
  local after = lines(buf)
  local count_after = #vim.tbl_filter(function(s)
    return s:find("Conductor Report", 1, true) ~= nil
  end, after)
  check(count_after == count_before, "refresh added or removed a report", after)
  check(after[1] == original[1] and after[3] == original[3], "text outside the report changed", after)
  check(status == "Conductor: refreshing “async runtimes in Rust”", "the status line does not name the report's topic", status)
end)

test(":checkhealth conductor reports OK and the settings the client was given", function()
  local text = H.checkhealth("conductor")
  check(not text:find("ERROR", 1, true), "checkhealth reports an ERROR")
  check(not text:find("No healthcheck found", 1, true), "healthcheck not discovered")
  check(text:find("OK:? ?%S* ?found") or text:find("found " .. bin, 1, true), "binary not reported OK")
  check(text:find("version:", 1, true), "version not reported")
  check(text:find("wikipedia configured", 1, true), "wikipedia not reported as configured")
  check(text:find("LLM", 1, true), "LLM not reported")
  check(text:find("client %d+: settings { cited_only = false, max_sources = 2 }"), "the client's settings are not shown")
  -- After update_settings, the client's settings (sent by didChangeConfiguration) are shown.
  conductor.update_settings({ citation_style = "numbered" })
  text = H.checkhealth("conductor")
  check(text:find('client %d+: settings { citation_style = "numbered", cited_only = false, max_sources = 2 }'),
    "the updated settings are not shown")
  check(not text:find("WARN", 1, true), "warnings in checkhealth")
end)

test("the clients stop", function()
  check(H.stop_clients("conductor"), "the conductor client did not stop")
end)

H.test_no_deprecations()
H.finish()
