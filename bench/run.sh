#!/usr/bin/env bash
# Reproduces the README's performance table on Debian 12 (as root or with sudo): installs what
# the benchmark needs, builds the release preset's benchmark targets, and runs bench/run.py.
#
#   bash bench/run.sh                 full run: W1-W5 x 5 repetitions + micro-benchmarks
#   bash bench/run.sh --quick         one short repetition (checks the setup in about a minute)
#   bash bench/run.sh --servers wschat,beast --workloads w1,w5
#
# Results: build/bench-results/{table.md,results.json,chart.png}. WSCHAT_BENCH_BUILD picks
# another build directory (default build/release).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${WSCHAT_BENCH_BUILD:-build/release}"

bash tools/install-deps.sh --bench

cmake --preset release -B "$build_dir" >/dev/null
cmake --build "$build_dir" --target loadgen minimal_chat beast_server parser_bench loopback_bench \
    ceiling_server lobby_server
exec /usr/bin/python3 bench/run.py --build-dir "$build_dir" "$@"
