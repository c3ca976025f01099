#!/usr/bin/env bash
# CI entry point for the Neovim plugin: a real headless Neovim (Debian's 0.7.2) drives the real
# conductor-lsp against loopback providers. Usage: CONDUCTOR_BIN=/path/to/conductor-lsp test/run.sh
# Installs what it needs on a fresh Debian 12 (as root): neovim, python3, lua-check. Last line:
#   editors-nvim: N passed, M failed
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PLUGIN="$(cd "$HERE/.." && pwd)"
REPO="$(cd "$PLUGIN/../.." && pwd)"
CONDUCTOR_BIN="${CONDUCTOR_BIN:-$REPO/target/debug/conductor-lsp}"
SLOW="${CONDUCTOR_TEST_SLOW:-8}"
T0=$(date +%s)

summary() { echo "editors-nvim: $1 passed, $2 failed"; }
fail_early() { echo "editors-nvim: $*" >&2; summary 0 1; exit 1; }

need=()
command -v nvim >/dev/null || need+=(neovim)
command -v python3 >/dev/null || need+=(python3)
command -v luacheck >/dev/null || need+=(lua-check)
if ((${#need[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "installing ${need[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}") >/dev/null \
      || fail_early "apt-get install ${need[*]} failed"
  else
    fail_early "missing ${need[*]} (run as root on Debian to install them)"
  fi
fi
[[ -x "$CONDUCTOR_BIN" ]] || fail_early "server binary $CONDUCTOR_BIN not found (cargo build first)"
CONDUCTOR_BIN="$(cd "$(dirname "$CONDUCTOR_BIN")" && pwd)/$(basename "$CONDUCTOR_BIN")"
echo "nvim: $(nvim --version | head -1); server: $("$CONDUCTOR_BIN" --version 2>&1 | head -1)"

LINT_PASSED=0 LINT_FAILED=0
echo "luacheck (lua/, plugin/, lsp/, test/)"
if (cd "$PLUGIN" && luacheck -q --no-color lua plugin lsp test | sed 's/^/  /'; exit "${PIPESTATUS[0]}"); then
  LINT_PASSED=1; echo "  PASS luacheck"
else
  LINT_FAILED=1; echo "  FAIL luacheck"
fi

WORK="$(mktemp -d /tmp/conductor-nvim-test.XXXXXX)"
LOOP_PID=""
cleanup() {
  [[ -n "$LOOP_PID" ]] && kill "$LOOP_PID" 2>/dev/null
  [[ "${KEEP_TEST_DIR:-0}" == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT

python3 "$PLUGIN/../testing/loopback_providers.py" --port 0 --port-file "$WORK/port" --log "$WORK/loopback.log" --slow "$SLOW" >"$WORK/loopback.out" 2>&1 &
LOOP_PID=$!
for _ in $(seq 1 100); do [[ -s "$WORK/port" ]] && break; sleep 0.05; done
[[ -s "$WORK/port" ]] || fail_early "the loopback provider server did not start: $(cat "$WORK/loopback.out")"
PORT="$(cat "$WORK/port")"

# Hermetic server environment: loopback providers only, no keys, no LLM, temp config and cache.
for v in TAVILY_API_KEY BRAVE_API_KEY BRAVE_SEARCH_API_KEY EXA_API_KEY SEARXNG_URL SEARX_URL \
         OPENAI_API_KEY OPENAI_BASE_URL ANTHROPIC_API_KEY ANTHROPIC_BASE_URL OLLAMA_HOST \
         CONDUCTOR_LLM CONDUCTOR_LLM_MODEL CONDUCTOR_MAX_SOURCES CONDUCTOR_TIMEOUT; do unset "$v"; done
export CONDUCTOR_PROVIDERS=wikipedia,hackernews
export CONDUCTOR_WIKIPEDIA_BASE_URL="http://127.0.0.1:$PORT"
export CONDUCTOR_HACKERNEWS_BASE_URL="http://127.0.0.1:$PORT"
export CONDUCTOR_LLM=none
export CONDUCTOR_CACHE_DIR="$WORK/cache" XDG_CONFIG_HOME="$WORK/config" XDG_CACHE_HOME="$WORK/xdg-cache" XDG_DATA_HOME="$WORK/data" XDG_STATE_HOME="$WORK/state"
export CONDUCTOR_LOG="${CONDUCTOR_LOG:-info}"
mkdir -p "$WORK/notes" "$CONDUCTOR_CACHE_DIR" "$XDG_CONFIG_HOME"
export CONDUCTOR_BIN CONDUCTOR_TEST_DIR="$WORK/notes" CONDUCTOR_TEST_RESULTS="$WORK/results.json" CONDUCTOR_TEST_SLOW="$SLOW"

echo "running headless Neovim (loopback providers on 127.0.0.1:$PORT)"
timeout 300 nvim --headless -u NONE -i NONE -n --cmd "set rtp^=$PLUGIN" --cmd "set shortmess+=F" \
  -c "luafile $HERE/conductor_test.lua" </dev/null 2>&1 | sed -u 's/^/  /'
rc=${PIPESTATUS[0]}

if [[ ! -s "$WORK/results.json" ]]; then
  echo "Neovim exited (status $rc) before writing results; server log follows" >&2
  tail -50 "$WORK"/state/nvim/lsp.log "$HOME/.cache/nvim/lsp.log" 2>/dev/null >&2
  summary "$LINT_PASSED" $((LINT_FAILED + 1))
  exit 1
fi
read -r PASSED FAILED < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["passed"], r["failed"])' "$WORK/results.json")
echo "loopback requests: $(wc -l <"$WORK/loopback.log" 2>/dev/null || echo 0); took $(( $(date +%s) - T0 )) s"
PASSED=$((PASSED + LINT_PASSED)) FAILED=$((FAILED + LINT_FAILED))
summary "$PASSED" "$FAILED"
[[ "$FAILED" -eq 0 && "$PASSED" -gt 0 ]]
