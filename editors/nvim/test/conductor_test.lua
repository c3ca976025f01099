-- Headless end-to-end test of the Conductor Neovim plugin against the real conductor-lsp and
-- loopback providers. Run by editors/nvim/test/run.sh:
--   nvim --headless -u NONE -i NONE -n --cmd "set rtp^=<plugin>" -c "luafile conductor_test.lua"
-- Env: CONDUCTOR_BIN, CONDUCTOR_TEST_DIR (scratch folder), CONDUCTOR_TEST_RESULTS (JSON out),
--      CONDUCTOR_TEST_SLOW (seconds the loopback waits on "slow" queries).
local results = {}
local function out(...)
  io.stdout:write(table.concat(vim.tbl_map(tostring, { ... }), " ") .. "\n")
  io.stdout:flush()
end

local bin = assert(os.getenv("CONDUCTOR_BIN"), "CONDUCTOR_BIN is not set")
local dir = assert(os.getenv("CONDUCTOR_TEST_DIR"), "CONDUCTOR_TEST_DIR is not set")
local slow = tonumber(os.getenv("CONDUCTOR_TEST_SLOW") or "8")

-- Collect notifications instead of showing them.
local notes = {}
vim.notify = function(msg, level)
  table.insert(notes, { msg = msg, level = level })
  out("  notify:", msg)
end

vim.cmd("filetype on")
vim.cmd("runtime! plugin/conductor.lua")
local conductor = require("conductor")
conductor.setup({ cmd = { bin, "--stdio" }, progress = false })

local function lines(bufnr)
  return vim.api.nvim_buf_get_lines(bufnr or 0, 0, -1, false)
end

local function test(name, fn)
  local t0 = vim.loop.hrtime()
  local ok, e = xpcall(fn, debug.traceback)
  local ms = math.floor((vim.loop.hrtime() - t0) / 1e6)
  table.insert(results, { name = name, ok = ok, error = ok and nil or tostring(e), ms = ms })
  out(ok and "PASS" or "FAIL", name, ("(%d ms)"):format(ms), ok and "" or ("\n" .. tostring(e)))
end

local function check(cond, msg, ...)
  if not cond then
    error(msg .. (select("#", ...) > 0 and (": " .. vim.inspect({ ... })) or ""), 2)
  end
end

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
  local rows = require("conductor.health")._parse_providers(table.concat({
    "provider    status          used     detail",
    "tavily      not configured  no       set TAVILY_API_KEY",
    "wikipedia   configured      yes      no key needed",
    "notes       configured      no       searches /x",
    "",
    "config file: /c/config.toml (not found)",
  }, "\n"))
  check(#rows == 3, "3 provider rows", rows)
  check(rows[1].name == "tavily" and rows[1].status == "not configured" and rows[1].detail == "set TAVILY_API_KEY", "tavily row", rows[1])
  check(rows[2].status == "configured" and rows[2].used == "yes", "wikipedia row", rows[2])
  check(#conductor.validate_settings({ max_sources = 5, citation_style = "numbered", providers = { "arxiv" } }) == 0, "valid settings")
  check(#conductor.validate_settings({ maxSources = 5, placement = "top" }) == 2, "invalid settings")
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
  check(wait_done(30000), "research did not finish in 30 s")
  local r = conductor.last_result
  check(conductor.last_error == nil, "server error", conductor.last_error)
  check(type(r) == "table" and r.applied == true, "result not applied", r)
  check((r.sources or 0) >= 2, "expected at least 2 sources", r)
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
end)

test("hover on a citation shows the source's title", function()
  local l = lines(buf)
  local row = find(buf, function(s)
    return s:find("https://tokio.rs/blog/2020-12-tokio-1-0", 1, true) ~= nil
  end, report_at or 1)
  check(row, "no citation line to hover", l)
  local col = l[row]:find("https://tokio.rs", 1, true) + 3
  vim.api.nvim_win_set_cursor(0, { row, col })
  local params = vim.lsp.util.make_position_params()
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
end)

test(":ConductorCancel stops a slow run and leaves the buffer unchanged", function()
  local before = lines(buf)
  local row = find(buf, function(s)
    return s == "A slow topic that will be cancelled"
  end)
  check(row, "slow topic line missing")
  vim.cmd(("%d,%dConductorResearch"):format(row, row))
  check(next(conductor._running) ~= nil, "no request started")
  local started = vim.loop.now()
  vim.wait(1500, function()
    return false
  end, 50)
  check(next(conductor._running) ~= nil, "the slow run finished before it could be cancelled", conductor.last_result)
  vim.cmd("ConductorCancel")
  check(wait_done(5000), "the request did not end within 5 s of :ConductorCancel")
  check(conductor.last_error ~= nil and conductor.last_error.code == -32800, "no cancellation reported", conductor.last_error)
  -- Wait until the slow provider would have answered, then check nothing arrived.
  local remaining = slow * 1000 - (vim.loop.now() - started) + 2000
  if remaining > 0 then
    vim.wait(remaining, function()
      return false
    end, 100)
  end
  check(vim.deep_equal(lines(buf), before), "the buffer changed after cancelling", lines(buf))
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
end)

test(":checkhealth conductor reports OK", function()
  vim.cmd("checkhealth conductor")
  local hb = vim.api.nvim_get_current_buf()
  local text = table.concat(lines(hb), "\n")
  out("  ---- checkhealth ----\n" .. text:gsub("\n", "\n  ") .. "\n  --------------------")
  check(not text:find("ERROR", 1, true), "checkhealth reports an ERROR")
  check(not text:find("No healthcheck found", 1, true), "healthcheck not discovered")
  check(text:find("OK:? ?%S* ?found") or text:find("found " .. bin, 1, true), "binary not reported OK")
  check(text:find("version:", 1, true), "version not reported")
  check(text:find("wikipedia configured", 1, true), "wikipedia not reported as configured")
  check(text:find("LLM", 1, true), "LLM not reported")
  vim.cmd("tabclose")
end)

-- Summary
local passed, failed = 0, 0
for _, r in ipairs(results) do
  if r.ok then
    passed = passed + 1
  else
    failed = failed + 1
  end
end
local f = io.open(assert(os.getenv("CONDUCTOR_TEST_RESULTS")), "w")
f:write(vim.fn.json_encode({ passed = passed, failed = failed, results = results }))
f:close()
for _, c in ipairs(require("conductor.util").get_clients("conductor")) do
  c.stop()
end
vim.wait(2000, function()
  return #require("conductor.util").get_clients("conductor") == 0
end, 50)
vim.cmd("qa!")
