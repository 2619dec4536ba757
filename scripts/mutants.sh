#!/usr/bin/env bash
# Mutation testing of the session core with cargo-mutants (`make mutants`; not part of
# `make test`). Settings in .cargo/mutants.toml; this installs cargo-mutants if missing and
# keeps the simulation short. Arguments go to cargo-mutants, e.g.
#   scripts/mutants.sh -f 'src/core/machine/refresh/*.rs'     # one scope
#   scripts/mutants.sh --list                                 # count without running
# Results: target/mutants.out/ (caught.txt, missed.txt, timeout.txt, unviable.txt, outcomes.json).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

command -v cargo-mutants >/dev/null || { echo "mutants: installing cargo-mutants"; cargo install --locked cargo-mutants; }

# Seeded schedules per mutant (make test runs 2000); the named scenarios run in full.
export SIM_SEEDS="${SIM_SEEDS:-60}"
# One mutant at a time: a build and the simulation each use every core.
exec cargo mutants -j "${MUTANTS_JOBS:-1}" --output target "$@"
