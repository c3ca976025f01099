#!/usr/bin/env bash
# CI entry point for Emacs: Debian's Emacs 28 + elpa-eglot 1.9 in batch mode drive the real
# conductor-lsp against loopback providers. Usage: CONDUCTOR_BIN=/path/to/conductor-lsp test/run.sh
# Last line:  editors-emacs: N passed, M failed
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
EDITORS="$(cd "$HERE/../.." && pwd)"
REPO="$(cd "$EDITORS/.." && pwd)"
CONDUCTOR_BIN="${CONDUCTOR_BIN:-$REPO/target/debug/conductor-lsp}"
summary() { echo "editors-emacs: $1 passed, $2 failed"; }
fail_early() { echo "editors-emacs: $*" >&2; summary 0 1; exit 1; }

need=()
command -v emacs >/dev/null || need+=(emacs-nox)
[[ -d /usr/share/emacs/site-lisp/elpa/eglot-1.9 ]] || ls -d /usr/share/emacs/site-lisp/elpa/eglot-* >/dev/null 2>&1 || need+=(elpa-eglot)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}") >/dev/null \
      || fail_early "apt-get install ${need[*]} failed"
  else
    fail_early "missing ${need[*]}"
  fi
fi
[[ -x "$CONDUCTOR_BIN" ]] || fail_early "server binary $CONDUCTOR_BIN not found (cargo build first)"
CONDUCTOR_BIN="$(cd "$(dirname "$CONDUCTOR_BIN")" && pwd)/$(basename "$CONDUCTOR_BIN")"

WORK="$(mktemp -d /tmp/conductor-emacs-test.XXXXXX)"
LOOP_PID=""
cleanup() { [[ -n "$LOOP_PID" ]] && kill "$LOOP_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
python3 "$EDITORS/testing/loopback_providers.py" --port 0 --port-file "$WORK/port" >/dev/null 2>&1 &
LOOP_PID=$!
for _ in $(seq 1 100); do [[ -s "$WORK/port" ]] && break; sleep 0.05; done
[[ -s "$WORK/port" ]] || fail_early "loopback provider server did not start"
PORT="$(cat "$WORK/port")"
for v in TAVILY_API_KEY BRAVE_API_KEY BRAVE_SEARCH_API_KEY EXA_API_KEY SEARXNG_URL SEARX_URL \
         OPENAI_API_KEY OPENAI_BASE_URL ANTHROPIC_API_KEY ANTHROPIC_BASE_URL OLLAMA_HOST \
         CONDUCTOR_LLM_MODEL CONDUCTOR_MAX_SOURCES CONDUCTOR_TIMEOUT; do unset "$v"; done
export CONDUCTOR_PROVIDERS=wikipedia,hackernews CONDUCTOR_LLM=none
# The fake results carry public URLs: never read them.
export CONDUCTOR_READ=0
export CONDUCTOR_WIKIPEDIA_BASE_URL="http://127.0.0.1:$PORT" CONDUCTOR_HACKERNEWS_BASE_URL="http://127.0.0.1:$PORT"
export CONDUCTOR_CACHE_DIR="$WORK/cache" XDG_CONFIG_HOME="$WORK/config" XDG_CACHE_HOME="$WORK/xdg-cache" HOME="$WORK/home"
mkdir -p "$WORK/notes" "$HOME"
export CONDUCTOR_BIN CONDUCTOR_TEST_DIR="$WORK/notes" CONDUCTOR_TEST_RESULTS="$WORK/results"
echo "emacs: $(emacs --version | head -1)"
timeout 120 emacs --batch -l "$HERE/conductor-eglot-test.el" 2>&1 | grep -v '^\[eglot\] \|^\[jsonrpc\]' | sed -u 's/^/  /'
[[ -s "$WORK/results" ]] || { echo "emacs exited before writing results" >&2; summary 0 1; exit 1; }
read -r PASSED FAILED <"$WORK/results"
summary "$PASSED" "$FAILED"
[[ "$FAILED" -eq 0 && "$PASSED" -gt 0 ]]
