#!/usr/bin/env bash
# Installs the build dependencies, builds the minimal chat server (release preset) and starts it
# on port 8080. Extra arguments go to the server, e.g. tools/start-chat.sh --address 0.0.0.0
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh
cmake --preset release -DWSCHAT_BUILD_TESTS=OFF -DWSCHAT_BUILD_BENCH=OFF >/dev/null
cmake --build --preset release --target minimal_chat
echo "minimal_chat: open http://127.0.0.1:8080/ in two browser tabs (Ctrl-C stops the server)"
exec build/release/minimal_chat --port 8080 "$@"
