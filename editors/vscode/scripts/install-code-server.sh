#!/usr/bin/env bash
# Installs code-server 4.100.3 (VS Code 1.100.3, the newest code-server that runs on node 20) from the
# npm registry into a cache folder, without touching anything but the npm registry.
# Prints the path of the code-server launcher on its last line. Idempotent: a finished install is reused.
# Recipe: shared/reference/tooling.md §4.
set -euo pipefail
CS_VERSION="${CODE_SERVER_VERSION:-4.100.3}"
RG_PKG="@vscode/ripgrep-linux-x64@1.18.0"
CACHE="${CONDUCTOR_EDITORS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/conductor-editors}"
DIR="$CACHE/code-server-$CS_VERSION"
BIN="$DIR/node_modules/code-server/out/node/entry.js"
if [[ -f "$DIR/.complete" && -f "$BIN" ]]; then
  echo "$DIR/node_modules/.bin/code-server"
  exit 0
fi
log() { echo "[install-code-server] $*" >&2; }
rm -rf "$DIR"; mkdir -p "$DIR"; cd "$DIR"
export npm_config_unsafe_perm=true npm_config_yes=true npm_config_audit=false npm_config_fund=false
# Offline native builds against the installed node's headers (Debian's nodejs ships them in /usr/include/node).
if [[ -z "${npm_config_nodedir:-}" && -f /usr/include/node/node.h ]]; then export npm_config_nodedir=/usr; fi
echo '{"name":"cs-holder","private":true}' > package.json
log "fetching code-server@$CS_VERSION"
npm pack --silent "code-server@$CS_VERSION" >&2
npm install --ignore-scripts --no-save "./code-server-$CS_VERSION.tgz" >&2
CS="$DIR/node_modules/code-server"
log "installing VS Code's own dependencies"
(cd "$CS/lib/vscode" && npm install --omit=dev --ignore-scripts >&2)
# @vscode/ripgrep's postinstall downloads from GitHub; give it the binary from the npm registry instead.
(mkdir -p "$DIR/rg" && cd "$DIR/rg" && npm pack --silent "$RG_PKG" >&2 && tar xzf ./*.tgz)
RG="$(find "$DIR/rg/package" -type f -name rg | head -1)"
mkdir -p "$CS/lib/vscode/node_modules/@vscode/ripgrep/bin"
cp "$RG" "$CS/lib/vscode/node_modules/@vscode/ripgrep/bin/rg"; chmod +x "$CS/lib/vscode/node_modules/@vscode/ripgrep/bin/rg"
log "building native modules"
(cd "$CS/lib/vscode" && npm rebuild >&2 && npm rebuild node-pty >&2)
(cd "$CS/lib/vscode" && ln -sfn node_modules node_modules.asar)
(cd "$CS/lib/vscode/bin/remote-cli" && ln -sfn code-linux.sh code-server) || true
(cd "$CS/lib/vscode/bin/helpers" && ln -sfn browser-linux.sh browser.sh) || true
log "installing built-in extensions' dependencies"
(cd "$CS/lib/vscode/extensions" && npm install --omit=dev >&2)
# argon2 is hoisted next to code-server; its prebuilt download fails offline, so it builds from source.
(cd "$DIR" && npm rebuild argon2 >&2)
XDG_CONFIG_HOME="$DIR/.config" "$DIR/node_modules/.bin/code-server" --version >&2
touch "$DIR/.complete"
echo "$DIR/node_modules/.bin/code-server"
