#!/usr/bin/env bash
# Three chat_server nodes sharing their rooms through Redis, behind nginx, on 127.0.0.1:
#
#   bash tools/cluster.sh start [FLAG VALUE]...  installs what is missing, builds chat_server
#                       (release preset), starts redis-server, three chat_server nodes and nginx
#                       (examples/nginx/cluster.conf), prints the URL; extra flags go to every node
#   bash tools/cluster.sh status                 which of them run, and where (exit 0: all five)
#   bash tools/cluster.sh stop                   stops every one of them
#
# Ports: nginx on $WSCHAT_CLUSTER_PORT (default 8080), the nodes on the next three (8081-8083),
# redis-server on $WSCHAT_CLUSTER_REDIS_PORT (default 6380, not Debian's 6379). Pid files, logs
# and nginx's prefix live in $WSCHAT_CLUSTER_DIR (default build/cluster). $WSCHAT_CHAT_SERVER
# names a chat_server binary to use instead of building one (nothing is installed then either).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

run_dir="${WSCHAT_CLUSTER_DIR:-build/cluster}"
mkdir -p "$run_dir"
run_dir="$(cd "$run_dir" && pwd)"
port="${WSCHAT_CLUSTER_PORT:-8080}"
redis_port="${WSCHAT_CLUSTER_REDIS_PORT:-6380}"
nodes=(node1 node2 node3)

node_port() { echo $((port + $1)); } # node N (1-3) listens on port + N

# Whether process $1 runs: exists and is not a zombie (one that exited but was not reaped yet,
# as under a test harness that adopts orphans).
running() {
    kill -0 "$1" 2>/dev/null && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null
}

# Whether the process in pid file $1 runs and is the program $2 (a pid is reused once freed).
alive() {
    local pid
    pid="$(cat "$run_dir/$1.pid" 2>/dev/null)" || return 1
    [ -n "$pid" ] && running "$pid" &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

# Waits up to 10 s for log $1 to contain $2; fails with the log's tail otherwise.
wait_for_log() {
    for _ in $(seq 100); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "cluster.sh: '$2' did not appear in $1:" >&2
    tail -n 20 "$1" >&2 || true
    return 1
}

# Stops the process of pid file $1 (program $2) with signal $3, then SIGKILL after 10 s.
stop_one() {
    local name="$1" program="$2" signal="$3" pid
    if ! alive "$name" "$program"; then
        rm -f "$run_dir/$name.pid"
        return 0
    fi
    pid="$(cat "$run_dir/$name.pid")"
    kill "-$signal" "$pid"
    for _ in $(seq 100); do
        running "$pid" || break
        sleep 0.1
    done
    if running "$pid"; then
        echo "cluster.sh: $name (pid $pid) ignored SIG$signal for 10 s: killing it" >&2
        kill -KILL "$pid"
    fi
    rm -f "$run_dir/$name.pid"
    echo "stopped $name (pid $pid)"
}

stop_all() {
    stop_one nginx "nginx: master" QUIT # graceful: its open WebSockets are closed by the nodes
    for node in "${nodes[@]}"; do
        stop_one "$node" chat_server TERM # members get 1001 and may resume on another node
    done
    stop_one redis redis-server TERM
}

status() {
    local running=0
    if alive redis redis-server; then
        echo "redis-server  pid $(cat "$run_dir/redis.pid")  redis://127.0.0.1:$redis_port"
        running=$((running + 1))
    else
        echo "redis-server  not running"
    fi
    for i in 1 2 3; do
        if alive "node$i" chat_server; then
            echo "node$i         pid $(cat "$run_dir/node$i.pid")  http://127.0.0.1:$(node_port "$i")/"
            running=$((running + 1))
        else
            echo "node$i         not running"
        fi
    done
    if alive nginx "nginx: master"; then
        echo "nginx         pid $(cat "$run_dir/nginx.pid")  http://127.0.0.1:$port/"
        running=$((running + 1))
    else
        echo "nginx         not running"
    fi
    echo "logs and pid files: $run_dir"
    [ "$running" -eq 5 ]
}

start() {
    for name in redis node1 node2 node3 nginx; do
        if [ -s "$run_dir/$name.pid" ] && running "$(cat "$run_dir/$name.pid")"; then
            echo "cluster.sh: $name is running already (pid $(cat "$run_dir/$name.pid")):" \
                "bash tools/cluster.sh stop first" >&2
            exit 1
        fi
    done
    local chat_server="${WSCHAT_CHAT_SERVER:-}"
    if [ -z "$chat_server" ]; then
        bash tools/install-deps.sh --cluster
        cmake --preset release -DWSCHAT_BUILD_TESTS=OFF -DWSCHAT_BUILD_BENCH=OFF >/dev/null
        cmake --build --preset release --target chat_server
        chat_server="$root/build/release/examples/chat_server/chat_server"
    fi
    for program in redis-server nginx; do
        command -v "$program" >/dev/null || PATH="$PATH:/usr/sbin"
        command -v "$program" >/dev/null || {
            echo "cluster.sh: $program not found (bash tools/install-deps.sh --cluster)" >&2
            exit 1
        }
    done
    # Whatever fails from here on, nothing is left running.
    trap 'echo "cluster.sh: start failed; stopping what was started" >&2; stop_all >&2' ERR

    # nohup: they outlive this script and the terminal it ran in, until `stop`.
    nohup redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no </dev/null >"$run_dir/redis.log" 2>&1 &
    echo $! >"$run_dir/redis.pid"
    wait_for_log "$run_dir/redis.log" "Ready to accept connections"

    for i in 1 2 3; do
        nohup "$chat_server" --address 127.0.0.1 --port "$(node_port "$i")" \
            --redis "redis://127.0.0.1:$redis_port" \
            --trusted-proxy 127.0.0.1 "$@" </dev/null >"$run_dir/node$i.log" 2>&1 &
        echo $! >"$run_dir/node$i.pid"
    done
    for i in 1 2 3; do
        wait_for_log "$run_dir/node$i.log" "listening on ws://"
    done

    # The example's config, with this run's ports.
    sed -e "s/listen 127\.0\.0\.1:8080;/listen 127.0.0.1:$port;/" \
        -e "s/server 127\.0\.0\.1:8081 /server 127.0.0.1:$(node_port 1) /" \
        -e "s/server 127\.0\.0\.1:8082 /server 127.0.0.1:$(node_port 2) /" \
        -e "s/server 127\.0\.0\.1:8083 /server 127.0.0.1:$(node_port 3) /" \
        examples/nginx/cluster.conf >"$run_dir/nginx.conf"
    mkdir -p "$run_dir/tmp"
    # nginx daemonises and writes its master's pid to nginx.pid in its prefix.
    nginx -p "$run_dir" -e "$run_dir/error.log" -c "$run_dir/nginx.conf"
    for _ in $(seq 100); do
        [ -s "$run_dir/nginx.pid" ] && break
        sleep 0.1
    done
    alive nginx "nginx: master"
    trap - ERR

    echo "three chat_server nodes on Redis behind nginx: open http://127.0.0.1:$port/" \
        "in several tabs (each lands on one of the nodes)"
    echo "stop them all with: bash tools/cluster.sh stop"
}

case "${1:-}" in
start)
    shift
    start "$@"
    ;;
stop) stop_all ;;
status) status ;;
*)
    echo "usage: bash tools/cluster.sh start [chat_server FLAG VALUE]... | status | stop" >&2
    exit 2
    ;;
esac
