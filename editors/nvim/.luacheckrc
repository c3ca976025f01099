-- luacheck config for the Conductor Neovim plugin (Debian package lua-check)
std = "luajit"
globals = { "vim" }
max_line_length = 160
exclude_files = {}
