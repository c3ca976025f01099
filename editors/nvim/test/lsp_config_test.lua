-- Neovim 0.11+: the plugin's setup without setup(): the shipped lsp/conductor.lua, overridden with
-- vim.lsp.config("conductor", ...) and started by vim.lsp.enable("conductor"). The :Conductor*
-- commands and :checkhealth conductor must work with that client and show what it was given.
-- Run by run.sh on each Neovim that has vim.lsp.config, with the environment of conductor_test.lua.
local here = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h")
local H = dofile(here .. "/harness.lua")
local test, check, lines = H.test, H.check, H.lines

local bin = assert(os.getenv("CONDUCTOR_BIN"), "CONDUCTOR_BIN is not set")
local dir = assert(os.getenv("CONDUCTOR_TEST_DIR"), "CONDUCTOR_TEST_DIR is not set")

vim.cmd("filetype on")
vim.cmd("runtime! plugin/conductor.lua")
local conductor = require("conductor")
local util = require("conductor.util")

-- The user's config: the binary's full path (it is not on PATH), settings in both places the
-- server reads. max_sources = 1 is checked on the server's answer below.
vim.lsp.config("conductor", {
  cmd = { bin, "--stdio" },
  init_options = { timeout = 20 },
  settings = { conductor = { max_sources = 1, cited_only = true, providers = { "wikipedia" } } },
})
vim.lsp.enable("conductor")

local WANT = '{ cited_only = true, max_sources = 1, providers = { "wikipedia" }, timeout = 20 }'

test("before any client: :checkhealth conductor shows vim.lsp.config's settings and binary", function()
  check(not conductor.is_setup(), "setup() was called")
  local text = H.checkhealth("conductor")
  check(text:find("vim.lsp.enable('conductor') was called", 1, true), "does not say how the server is set up")
  check(text:find("vim.lsp.config('conductor'): settings " .. WANT, 1, true), "vim.lsp.config's settings are not shown")
  check(text:find("found " .. bin, 1, true), "the configured binary is not the one checked")
  check(text:find("hackernews configured (not used)", 1, true), "the settings' providers are not the ones checked")
  check(not text:find("ERROR", 1, true) and not text:find("WARN", 1, true), "errors or warnings")
end)

local note = dir .. "/note.md"
vim.fn.writefile({ "# Notes", "", "Read about async runtimes in Rust.", "", "The end." }, note)
vim.cmd("edit " .. vim.fn.fnameescape(note))
local buf = vim.api.nvim_get_current_buf()

test("vim.lsp.enable('conductor') starts the shipped config for a markdown buffer", function()
  local ok = vim.wait(10000, function()
    local c = util.get_clients("conductor", buf)[1]
    return c ~= nil and c.initialized ~= false and c.server_capabilities ~= nil
  end, 50)
  check(ok, "no initialized conductor client attached")
  local c = util.get_clients("conductor", buf)[1]
  check(vim.deep_equal(c.config.filetypes, { "markdown", "text" }), "lsp/conductor.lua's filetypes not used", c.config.filetypes)
  check(c.config.cmd[1] == bin, "vim.lsp.config's cmd not used", c.config.cmd)
end)

test(":ConductorResearch works with the vim.lsp.enable client, with its settings", function()
  vim.api.nvim_win_set_cursor(0, { 3, 0 })
  vim.cmd("normal! V\27")
  vim.cmd("'<,'>ConductorResearch")
  local status = conductor.status()
  check(vim.wait(30000, function()
    return next(conductor._running) == nil
  end, 50), "research did not finish in 30 s")
  local r = conductor.last_result
  check(conductor.last_error == nil, "server error", conductor.last_error)
  check(type(r) == "table" and r.applied == true, "not applied", r)
  check(r.sources == 1, "max_sources = 1 from vim.lsp.config did not reach the server", r)
  check(lines(buf)[3] == "Read about async runtimes in Rust.", "the selection changed")
  check(status == "Conductor: researching “Read about async runtimes in Rust.”", "the status line does not name the topic", status)
end)

test(":ConductorCancel with nothing running says so (vim.lsp.enable client)", function()
  local from = #H.notes
  vim.cmd("ConductorCancel")
  check(H.wait_note("^Conductor: no research is running in this buffer$", from), "no answer", vim.list_slice(H.notes, from + 1))
end)

test(":checkhealth conductor shows the settings the running client was given", function()
  local text = H.checkhealth("conductor")
  local c = util.get_clients("conductor", buf)[1]
  check(text:find(("client %d: settings %s"):format(c.id, WANT), 1, true), "the client's settings are not shown")
  check(text:find("found " .. bin, 1, true), "the client's binary is not the one checked")
  check(not text:find("ERROR", 1, true) and not text:find("WARN", 1, true), "errors or warnings")
end)

test("the clients stop", function()
  check(H.stop_clients("conductor"), "the conductor client did not stop")
end)

H.test_no_deprecations()
H.finish()
