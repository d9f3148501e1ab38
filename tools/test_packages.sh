#!/usr/bin/env bash
# Builds the consumer projects of tests/package/ against this checkout, in temporary directories:
#   cmake_find_package   install wschat to a temporary prefix, then find_package(wschat)
#                        (and the installed pkg-config file, with a plain compiler call)
#   cmake_subdirectory   add_subdirectory(<this checkout>)
#   meson_subproject     subprojects/wschat -> <this checkout> (a symlink)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Runs a command quietly; on failure prints its output and stops.
run() {
    "$@" >"$tmp/log" 2>&1 || { cat "$tmp/log"; echo "test_packages.sh: FAILED: $*" >&2; exit 1; }
}

echo "-- cmake_find_package"
run cmake -S "$root" -B "$tmp/wschat" -G Ninja -DCMAKE_INSTALL_PREFIX="$tmp/prefix" \
    -DWSCHAT_BUILD_TESTS=OFF -DWSCHAT_BUILD_EXAMPLES=OFF
run cmake --install "$tmp/wschat"
run cmake -S "$root/tests/package/cmake_find_package" -B "$tmp/find_package" -G Ninja \
    -DCMAKE_PREFIX_PATH="$tmp/prefix"
run cmake --build "$tmp/find_package"
# zlib is installed (tools/install-deps.sh): the installed package must offer wschat::deflate.
if pkg-config --exists zlib && [ ! -x "$tmp/find_package/chat_deflate" ]; then
    echo "test_packages.sh: FAILED: zlib is installed but find_package(wschat) gave no wschat::deflate" >&2
    exit 1
fi

# hiredis likewise: the installed package must offer wschat::redis.
if pkg-config --exists hiredis && [ ! -x "$tmp/find_package/chat_redis" ]; then
    echo "test_packages.sh: FAILED: hiredis is installed but find_package(wschat) gave no wschat::redis" >&2
    exit 1
fi

echo "-- pkg-config (installed wschat.pc)"
export PKG_CONFIG_PATH="$tmp/prefix/share/pkgconfig"
# shellcheck disable=SC2046 # word splitting of the flags is wanted
run c++ -std=c++17 -o "$tmp/chat_pc" "$root/tests/package/cmake_find_package/main.cpp" \
    $(pkg-config --cflags --libs wschat)

echo "-- cmake_subdirectory"
run cmake -S "$root/tests/package/cmake_subdirectory" -B "$tmp/subdirectory" -G Ninja \
    -DWSCHAT_SOURCE_DIR="$root"
run cmake --build "$tmp/subdirectory"

echo "-- meson_subproject"
cp -r "$root/tests/package/meson_subproject" "$tmp/meson_subproject"
mkdir -p "$tmp/meson_subproject/subprojects"
ln -s "$root" "$tmp/meson_subproject/subprojects/wschat"
run meson setup "$tmp/meson_subproject/build" "$tmp/meson_subproject" --wrap-mode=forcefallback
run meson compile -C "$tmp/meson_subproject/build"

echo "test_packages.sh: all three consumer projects built"
