#!/usr/bin/env bash
# Installs the build dependencies, builds examples/iot_gateway and examples/iot_devices (release
# preset), and starts the gateway on a Unix socket behind nginx (examples/nginx/
# iot_gateway.conf, everything under /tmp/wschat-iot) with 200 simulated devices reporting
# every second. Open http://127.0.0.1:8082/ and tick the devices to watch; Ctrl-C stops all
# three. Without nginx (tools/install-deps.sh --tests installs it) the gateway serves the same
# on TCP 127.0.0.1:8082 itself. Extra arguments go to iot_devices, e.g.
#   tools/iot-demo.sh --devices 1000 --interval-ms 200
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${WSCHAT_PRESET:-release}"
dir=/tmp/wschat-iot

bash tools/install-deps.sh
cmake --preset "$preset" -DWSCHAT_BUILD_TESTS=OFF -DWSCHAT_BUILD_BENCH=OFF >/dev/null
cmake --build --preset "$preset" --target iot_gateway iot_devices

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait' EXIT
trap 'exit 130' INT TERM # the EXIT trap then stops what was started
if [ -x /usr/sbin/nginx ]; then
    mkdir -p "$dir/tmp"
    rm -f "$dir/gateway.sock"
    build/"$preset"/iot_gateway --unix "$dir/gateway.sock" &
    pids+=($!)
    for _ in $(seq 100); do
        [ -S "$dir/gateway.sock" ] && break
        sleep 0.05
    done
    # As root, nginx's workers would run as `nobody`, who may not open root's socket.
    user=""
    [ "$(id -u)" -eq 0 ] && user="user root;"
    /usr/sbin/nginx -p "$dir" -e "$dir/error.log" -c "$PWD/examples/nginx/iot_gateway.conf" \
        -g "daemon off; $user" &
    pids+=($!)
else
    echo "no nginx: iot_gateway serves on 127.0.0.1:8082 itself"
    build/"$preset"/iot_gateway --address 127.0.0.1 --port 8082 &
    pids+=($!)
fi
sleep 0.5
build/"$preset"/iot_devices --url ws://127.0.0.1:8082/ --devices 200 "$@" &
pids+=($!)
echo "open http://127.0.0.1:8082/ (Ctrl-C stops everything)"
wait
