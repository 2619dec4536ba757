#!/usr/bin/env bash
# Runs a test command, shows its output, and fails if it failed or ran zero tests.
# Usage: scripts/count.sh <layer name> <command...>
set -uo pipefail
name=$1; shift
out=$(mktemp)
"$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
# cargo/wasm-bindgen: "test result: ok. N passed"; node --test: "# pass N" or "ℹ pass N".
passed=$(grep -Eo '(test result: [a-z]+\. [0-9]+ passed|^[#ℹ] pass [0-9]+)' "$out" | grep -Eo '[0-9]+' | awk '{s+=$1} END {print s+0}')
rm -f "$out"
if [ "$rc" != 0 ]; then echo "== $name: FAILED (exit $rc)"; exit "$rc"; fi
if [ "$passed" -eq 0 ]; then echo "== $name: ran 0 tests, which counts as a failure"; exit 1; fi
echo "== $name: $passed passed"
