#!/usr/bin/env bash
# CI entry point for the VS Code extension: npm ci, typecheck, lint, unit tests, vsce package, and an
# end-to-end test in a real VS Code (code-server 4.100.3 in Debian's headless Chromium, driven by
# playwright-core) against the real conductor-lsp and loopback providers.
# Usage: CONDUCTOR_BIN=/path/to/conductor-lsp editors/vscode/scripts/ci.sh
# On a fresh Debian 12 (as root) it installs chromium, python3 and the headers code-server's native
# modules need; code-server itself is cached in ${CONDUCTOR_EDITORS_CACHE:-~/.cache/conductor-editors}.
# Screenshots: <repo>/target/e2e-screenshots/vscode-*.png. Last line:
#   editors-vscode: N passed, M failed
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
EXT="$(cd "$HERE/.." && pwd)"
REPO="$(cd "$EXT/../.." && pwd)"
# The unit tests check the extension's provider lists against this binary's registry too.
export CONDUCTOR_BIN="${CONDUCTOR_BIN:-$REPO/target/debug/conductor-lsp}"
export SCREENSHOTS="${SCREENSHOTS:-$REPO/target/e2e-screenshots}"
T0=$(date +%s)
PASSED=0
FAILED=0
declare -a LINES=()

stage() { # stage NAME COMMAND...
  local name="$1"; shift
  local t=$(date +%s)
  echo "==> $name"
  if "$@"; then
    PASSED=$((PASSED + 1)); LINES+=("PASS $name ($(( $(date +%s) - t )) s)")
    return 0
  else
    FAILED=$((FAILED + 1)); LINES+=("FAIL $name ($(( $(date +%s) - t )) s)")
    return 1
  fi
}
finish() {
  echo
  printf '%s\n' "${LINES[@]}"
  echo "took $(( $(date +%s) - T0 )) s; screenshots: $SCREENSHOTS"
  echo "editors-vscode: $PASSED passed, $FAILED failed"
  [[ $FAILED -eq 0 && $PASSED -gt 0 ]]
  exit $?
}

install_system_packages() {
  local need=()
  command -v node >/dev/null || { echo "node (20+) is required and not installed" >&2; return 1; }
  command -v python3 >/dev/null || need+=(python3)
  [[ -x /usr/bin/chromium ]] || need+=(chromium)
  command -v g++ >/dev/null || need+=(g++)
  command -v make >/dev/null || need+=(make)
  command -v pkg-config >/dev/null || need+=(pkg-config)
  # Headers for code-server's native modules (kerberos, native-keymap, keytar, x11).
  for p in libkrb5-dev libxkbfile-dev libsecret-1-dev libx11-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  if ((${#need[@]})); then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
      echo "missing: ${need[*]} (run as root on Debian to install them)" >&2; return 1
    fi
    echo "apt-get install ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
}

cd "$EXT" || exit 1
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
stage "system packages" install_system_packages || finish
stage "npm ci" npm ci --no-audit --no-fund || finish
stage "typecheck (tsc --noEmit)" npm run -s typecheck
stage "lint (eslint)" npm run -s lint
stage "unit tests (node --test)" npm run -s test:unit
stage "vsce package -> conductor.vsix" npm run -s package || finish

if [[ ! -x "$CONDUCTOR_BIN" ]]; then
  echo "server binary $CONDUCTOR_BIN not found (cargo build first)" >&2
  FAILED=$((FAILED + 1)); LINES+=("FAIL e2e: no server binary at $CONDUCTOR_BIN")
  finish
fi
CODE_SERVER=""
get_code_server() { CODE_SERVER="$("$HERE/install-code-server.sh" | tail -1)" && [[ -x "$CODE_SERVER" ]]; }
stage "code-server 4.100.3 (cached)" get_code_server || finish

RESULTS="$(mktemp /tmp/conductor-vscode-e2e-results.XXXXXX.json)"
echo "==> end-to-end in code-server"
CONDUCTOR_BIN="$CONDUCTOR_BIN" CODE_SERVER="$CODE_SERVER" VSIX="$EXT/conductor.vsix" E2E_RESULTS="$RESULTS" \
  timeout 300 node "$EXT/test/e2e/run.js"
if [[ -s "$RESULTS" ]]; then
  while IFS=$'\t' read -r ok name ms; do
    if [[ "$ok" == "true" ]]; then PASSED=$((PASSED + 1)); LINES+=("PASS e2e: $name ($ms ms)")
    else FAILED=$((FAILED + 1)); LINES+=("FAIL e2e: $name ($ms ms)"); fi
  done < <(node -e 'for (const r of JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).results) console.log([r.ok, r.name, r.ms].join("\t"))' "$RESULTS")
else
  FAILED=$((FAILED + 1)); LINES+=("FAIL e2e: no results (crashed or timed out)")
fi
rm -f "$RESULTS"
finish
