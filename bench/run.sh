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

bash tools/install-deps.sh
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
# Boost.Beast for the Beast peer, gnuplot for the chart, taskset (util-linux) for pinning,
# Catch2 because the release preset also configures the tests, Node for the `ws` peer.
packages=(libboost-dev gnuplot-nox util-linux python3 catch2)
if ! command -v node >/dev/null; then
    packages+=(nodejs npm)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    $sudo apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
fi
if [ ! -d node_modules/ws ]; then
    npm ci --no-audit --no-fund
fi

cmake --preset release -B "$build_dir" >/dev/null
cmake --build "$build_dir" --target loadgen minimal_chat beast_server parser_bench
exec /usr/bin/python3 bench/run.py --build-dir "$build_dir" "$@"
