#!/usr/bin/env bash
# Installs the build dependencies, builds examples/game_server and examples/game_bot (release
# preset), starts a game server at 30 Hz on a free port of 127.0.0.1, lets 8 bots play a match
# for 5 s and prints what they saw (every tick in order, positions as their inputs make them)
# and the input -> snapshot latency (p50/p99). Extra arguments go to game_bot, e.g.
#   tools/game-demo.sh --bots 32 --seconds 10
# TICK_HZ=60 tools/game-demo.sh runs the server at 60 Hz.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${WSCHAT_PRESET:-release}"

bash tools/install-deps.sh
cmake --preset "$preset" -DWSCHAT_BUILD_TESTS=OFF -DWSCHAT_BUILD_BENCH=OFF >/dev/null
cmake --build --preset "$preset" --target game_server game_bot

log="$(mktemp)"
build/"$preset"/game_server --address 127.0.0.1 --port 0 --tick-hz "${TICK_HZ:-30}" >"$log" &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -f "$log"' EXIT
trap 'exit 130' INT TERM # the EXIT trap then stops what was started
for _ in $(seq 100); do
    grep -q '^listening on' "$log" && break
    sleep 0.05
done
url="$(sed -n 's|^listening on ws://\(.*\)/$|ws://\1/match/demo|p' "$log")"
[ -n "$url" ] || { echo "game_server did not start" >&2; exit 1; }
echo "game_server: $url at ${TICK_HZ:-30} Hz"
build/"$preset"/game_bot --url "$url" --bots 8 --seconds 5 "$@"
