#!/usr/bin/env bash
# Installs what wschat needs on Debian 12, as root or as a user with sudo.
#   tools/install-deps.sh           compiler, CMake, Ninja, Asio, nlohmann/json (for the
#                                   browser chat), zlib (the examples' --deflate), hiredis and
#                                   redis-server (chat_server --redis, the Redis tests): enough
#                                   for tools/start-chat.sh
#   tools/install-deps.sh --bench   + Boost, gnuplot, taskset and Node: bench/run.sh
#   tools/install-deps.sh --tests   + Catch2, Meson, clang (with its sanitizer and libFuzzer
#                                   runtimes), clang-format, OpenSSL, Python websockets, Chromium
#                                   and fonts for the browser tests, nginx, nss_wrapper (the
#                                   tests' ::1-first `localhost`), doxygen (the API reference),
#                                   Prometheus' promtool (the /metrics test), Node (when
#                                   missing) and `npm ci`: tools/run-tests.sh,
#                                   tools/build-docs.sh
#   tools/install-deps.sh --cluster + nginx: tools/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi

packages=(g++ cmake ninja-build pkgconf libasio-dev nlohmann-json3-dev zlib1g-dev ca-certificates
    libhiredis-dev redis-server)
mode="${1:-}"
case "$mode" in
--tests)
    packages+=(catch2 meson python3 python3-websockets clang clang-format libclang-rt-14-dev
        libssl-dev openssl chromium fonts-noto-cjk fonts-noto-color-emoji nginx doxygen
        libnss-wrapper prometheus)
    ;;
--bench)
    # Boost.Beast for the Beast peer, gnuplot for the chart, taskset (util-linux) for
    # pinning, Catch2 because the release preset also configures the tests.
    packages+=(libboost-dev gnuplot-nox util-linux python3 catch2)
    ;;
--cluster)
    packages+=(nginx)
    ;;
esac
if [ -n "$mode" ] && [ "$mode" != --cluster ] && ! command -v node >/dev/null; then
    packages+=(nodejs npm) # the Node interop client, the browser driver, the Node `ws` peer
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    $sudo apt-get update
    # nginx, prometheus and redis-server ship daemons that Debian starts as soon as they are
    # installed (prometheus on every interface, port 9090; redis on 6379); the tests start
    # their own on 127.0.0.1 and need only the binaries. Debian's policy-rc.d hook refuses those starts while we install.
    refuse_starts=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod +x /usr/sbin/policy-rc.d
        refuse_starts=1
        trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
    if [ -n "$refuse_starts" ]; then
        $sudo rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
    # Nor should a Prometheus server we installed for its promtool start at the next boot.
    if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null; then
        $sudo systemctl disable prometheus >/dev/null 2>&1 || true
    fi
    # Nor the Redis installed for its binary: tests and tools/ start their own.
    if [[ " ${missing[*]} " == *" redis-server "* ]] && command -v systemctl >/dev/null; then
        $sudo systemctl disable redis-server >/dev/null 2>&1 || true
    fi
fi

if [ -n "$mode" ] && [ "$mode" != --cluster ] && [ -f package.json ]; then
    npm ci --no-audit --no-fund
fi
