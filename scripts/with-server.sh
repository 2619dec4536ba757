#!/usr/bin/env bash
# Runs a command with the local server up on free ports, then stops the server.
# Exports WS_MAIN, WS_API, WS_FOREIGN (origins). Extra server settings come from the
# environment (ACCESS_TTL, ...). Usage: scripts/with-server.sh <command...>
set -euo pipefail
cd "$(dirname "$0")/.."
server=target/debug/wasm-session-server
[ -x "$server" ] || cargo build -q -p wasm-session-server
log=$(mktemp)
PORT=0 API_PORT=0 FOREIGN_PORT=0 "$server" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  grep -q '^ready' "$log" && break
  kill -0 $pid 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
export WS_MAIN=$(awk '/^listening main/{print $3}' "$log")
export WS_API=$(awk '/^listening api/{print $3}' "$log")
export WS_FOREIGN=$(awk '/^listening foreign/{print $3}' "$log")
[ -n "$WS_MAIN" ] || { echo "server did not start:"; cat "$log"; exit 1; }
"$@"
