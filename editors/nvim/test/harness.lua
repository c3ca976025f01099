-- The test harness shared by the plugin's headless suites (conductor_test.lua, lsp_config_test.lua):
-- named tests, checks, collected notifications, and a watch on deprecations.
--   local h = dofile(<this file>)   -- first thing, before the plugin or vim.lsp is used
-- Env: CONDUCTOR_TEST_RESULTS (the JSON file run.sh reads).
local H = {}

H.results = {}
H.notes = {} -- every vim.notify: { msg, level }
H.deprecations = {} -- every vim.deprecate call: { name, alternative, version, plugin, where }

function H.out(...)
  io.stdout:write(table.concat(vim.tbl_map(tostring, { ... }), " ") .. "\n")
  io.stdout:flush()
end

-- Collect notifications instead of showing them (the suites assert on them).
vim.notify = function(msg, level)
  table.insert(H.notes, { msg = msg, level = level })
  H.out("  notify:", msg)
end

-- Any vim.deprecate call fails the suite, soft deprecations (not shown to users yet) included:
-- Neovim's own runtime calls it when the plugin or the suite uses a deprecated API, e.g. a
-- `client.stop()` dot call on 0.11 (`client:stop()` there).
if vim.deprecate then
  local original = vim.deprecate
  vim.deprecate = function(name, alternative, version, plugin, ...)
    table.insert(H.deprecations, {
      name = name,
      alternative = alternative,
      version = version,
      plugin = plugin,
      where = debug.traceback("", 2),
    })
    return original(name, alternative, version, plugin, ...)
  end
end

function H.test(name, fn)
  local uv = vim.uv or vim.loop
  local t0 = uv.hrtime()
  local ok, e = xpcall(fn, debug.traceback)
  local ms = math.floor((uv.hrtime() - t0) / 1e6)
  table.insert(H.results, { name = name, ok = ok, error = ok and nil or tostring(e), ms = ms })
  H.out(ok and "PASS" or "FAIL", name, ("(%d ms)"):format(ms), ok and "" or ("\n" .. tostring(e)))
end

function H.check(cond, msg, ...)
  if not cond then
    error(msg .. (select("#", ...) > 0 and (": " .. vim.inspect({ ... })) or ""), 2)
  end
end

function H.lines(bufnr)
  return vim.api.nvim_buf_get_lines(bufnr or 0, 0, -1, false)
end

--- Waits until a notification matching the Lua pattern `pat` arrives after index `from`.
function H.wait_note(pat, from, timeout)
  local found
  vim.wait(timeout or 5000, function()
    for i = (from or 0) + 1, #H.notes do
      if tostring(H.notes[i].msg):find(pat) then
        found = H.notes[i]
        return true
      end
    end
    return false
  end, 20)
  return found
end

--- The text of :checkhealth `name`, in a new tab that is closed afterwards.
function H.checkhealth(name)
  local tab, win = vim.api.nvim_get_current_tabpage(), vim.api.nvim_get_current_win()
  vim.cmd("tabnew") -- 0.11 shows the report in the current window when its buffer is empty
  vim.cmd("checkhealth " .. name)
  local text = table.concat(H.lines(vim.api.nvim_get_current_buf()), "\n")
  H.out("  ---- checkhealth ----\n  " .. text:gsub("\n", "\n  ") .. "\n  --------------------")
  vim.api.nvim_set_current_tabpage(tab)
  vim.cmd("tabonly!")
  vim.api.nvim_set_current_win(win)
  return text
end

--- Stops every client named `name` (vim.lsp.stop_client: not deprecated on 0.7 nor 0.11) and waits.
function H.stop_clients(name)
  local util = require("conductor.util")
  for _, c in ipairs(util.get_clients(name)) do
    vim.lsp.stop_client(c.id)
  end
  return vim.wait(5000, function()
    return #util.get_clients(name) == 0
  end, 50)
end

--- The last test of a suite: nothing deprecated was used, and Neovim warned about nothing.
-- Run it after stopping the clients, so their shutdown is covered too.
function H.test_no_deprecations()
  H.test("Neovim reports no deprecated API and no warning of its own", function()
    local dep = vim.tbl_map(function(d)
      return ("%s (use %s; removed in %s)%s"):format(d.name, tostring(d.alternative), tostring(d.version), d.where)
    end, H.deprecations)
    H.check(#dep == 0, "deprecated API used", dep)
    -- Neovim's own warnings (0.11's "position_encoding param is required ...", hard deprecations)
    -- come as notifications or messages; the plugin's start with "Conductor".
    local foreign = {}
    for _, n in ipairs(H.notes) do
      if (n.level or 0) >= vim.log.levels.WARN and not tostring(n.msg):find("^Conductor") then
        table.insert(foreign, n.msg)
      end
    end
    H.check(#foreign == 0, "warnings from Neovim", foreign)
    local messages = vim.fn.execute("messages")
    H.check(not messages:lower():find("deprecat"), "deprecation in :messages", messages)
  end)
end

--- Writes the results for run.sh and quits.
function H.finish()
  local passed, failed = 0, 0
  for _, r in ipairs(H.results) do
    if r.ok then
      passed = passed + 1
    else
      failed = failed + 1
    end
  end
  local f = assert(io.open(assert(os.getenv("CONDUCTOR_TEST_RESULTS"), "CONDUCTOR_TEST_RESULTS is not set"), "w"))
  f:write(vim.fn.json_encode({ passed = passed, failed = failed, results = H.results }))
  f:close()
  vim.cmd("qa!")
end

return H
