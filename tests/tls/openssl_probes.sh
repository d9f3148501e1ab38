#!/usr/bin/env bash
# Protocol probes of the TLS port with `openssl s_client`: TLS 1.0 and 1.1 refused by the
# server (the client's own security level is lowered so the refusal is the server's doing),
# TLS 1.2 and 1.3 accepted with a verified certificate, and plain HTTP on the TLS port closed.
#   tests/tls/openssl_probes.sh ECHO_SERVER
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
echo_server="$1"
dir="$(mktemp -d)"
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT
# A signal ends the script through `exit`, so the EXIT trap stops echo_server then too.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
bash "$root/tools/dev-cert.sh" "$dir" >/dev/null
"$echo_server" --address 127.0.0.1 --port 0 --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem" \
    >"$dir/out" &
pid=$!
for _ in $(seq 100); do grep -q listening "$dir/out" && break; sleep 0.1; done
port="$(sed -n 's|^listening on wss://127.0.0.1:\([0-9]*\)/$|\1|p' "$dir/out")"
[ -n "$port" ] || { echo "FAIL echo_server did not announce wss://"; exit 1; }

failures=0
probe() { # probe NAME EXPECT(accepted|refused) s_client-args...
    local name="$1" expect="$2"
    shift 2
    local log="$dir/probe.log" got=refused
    if timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername localhost \
        -CAfile "$dir/cert.pem" -verify_return_error "$@" </dev/null >"$log" 2>&1 &&
        grep -q "Verify return code: 0 (ok)" "$log"; then
        got=accepted
    fi
    if [ "$got" = "$expect" ]; then
        echo "PASS $name: $got"
    else
        echo "FAIL $name: expected $expect, got $got"; sed 's/^/    /' "$log" | tail -5
        failures=$((failures + 1))
    fi
}
probe "TLS 1.0" refused -tls1 -cipher 'DEFAULT:@SECLEVEL=0'
probe "TLS 1.1" refused -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
probe "TLS 1.2" accepted -tls1_2
probe "TLS 1.3" accepted -tls1_3

# The server's refusal is an alert, not a client-side limit: check the 1.1 probe's words.
timeout 10 openssl s_client -connect "127.0.0.1:$port" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' \
    </dev/null >"$dir/v11.log" 2>&1 || true
if grep -q "alert protocol version" "$dir/v11.log"; then
    echo "PASS TLS 1.1 refused by the server (protocol_version alert)"
else
    echo "FAIL TLS 1.1: no protocol_version alert from the server"; tail -5 "$dir/v11.log"
    failures=$((failures + 1))
fi

# Plain HTTP on the TLS port: the connection is closed, no HTTP answer, nothing hangs.
reply="$(printf 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n' |
    timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; cat >&3; cat <&3" 2>/dev/null || true)"
if [ -z "$(printf '%s' "$reply" | grep 'HTTP/1.1' || true)" ]; then
    echo "PASS plain HTTP on the TLS port is closed without an HTTP answer"
else
    echo "FAIL plain HTTP got an answer: $reply"; failures=$((failures + 1))
fi
# ... and the server still serves TLS afterwards.
probe "TLS 1.3 after the bad clients" accepted -tls1_3

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
[ "$status" -eq 0 ] && echo "PASS echo_server exits 0" || { echo "FAIL exit $status"; failures=$((failures + 1)); }
echo "$([ $failures -eq 0 ] && echo OK || echo FAILED): $failures failure(s)"
[ "$failures" -eq 0 ]
