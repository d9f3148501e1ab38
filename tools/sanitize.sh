#!/usr/bin/env bash
# Builds a Catch2 executable from some of the test files under a sanitizer and runs it:
#
#   tools/sanitize.sh thread  tests/threads.cpp tests/room_presence.cpp
#   tools/sanitize.sh address tests/abuse.cpp tests/limits.cpp
#
# "address" means ASan + UBSan. The files are split into two batches compiled side by side
# (g++, -O1 -g), each one translation unit that includes its files (a unity build, as the
# test suite's own build does: shared templates are instantiated once per batch), linked with
# tests/main.cpp, and run with the examples' paths from build/dev (for the tests that
# start echo_server or minimal_chat). Any sanitizer report fails the run. The full suite
# under a sanitizer is `cmake --workflow --preset asan` (or tsan): CI runs these focused
# builds because a whole sanitized build of every test takes longer than CI may.
set -euo pipefail
cd "$(dirname "$0")/.."

kind="${1:-}"
shift || true
case "$kind" in
thread) flags=(-fsanitize=thread) ;;
address) flags=(-fsanitize=address,undefined -fno-sanitize-recover=undefined) ;;
*)
    echo "usage: $0 thread|address TEST.cpp..." >&2
    exit 2
    ;;
esac
[ "$#" -gt 0 ] || {
    echo "usage: $0 thread|address TEST.cpp..." >&2
    exit 2
}

out="build/sanitize-${kind}"
mkdir -p "$out"
cxxflags=(-std=c++17 -O1 -g -fno-omit-frame-pointer "${flags[@]}" -DASIO_STANDALONE
    -DASIO_NO_DEPRECATED -Iinclude -Itests)
batches=("$out/batch_0.cpp" "$out/batch_1.cpp")
: >"${batches[0]}"
: >"${batches[1]}"
i=0
for f in "$@"; do
    printf '#include "%s"\n' "$PWD/$f" >>"${batches[$((i % 2))]}"
    i=$((i + 1))
done
[ -s "${batches[1]}" ] || batches=("${batches[0]}")
export cxxflags_joined="${cxxflags[*]}" out
printf '%s\n' tests/main.cpp "${batches[@]}" | xargs -P 2 -I{} sh -c \
    'g++ $cxxflags_joined -c "$1" -o "$out/$(basename "$1" .cpp).o"' _ {}
objects=("$out/main.o")
for f in "${batches[@]}"; do
    objects+=("$out/$(basename "$f" .cpp).o")
done
libs=() # the test client speaks TLS when OpenSSL's headers are there
[ ! -f /usr/include/openssl/ssl.h ] || libs=(-lssl -lcrypto)
g++ "${flags[@]}" "${objects[@]}" "${libs[@]}" -pthread -o "$out/tests"

export WSCHAT_ECHO_SERVER="$PWD/build/dev/echo_server" WSCHAT_MINIMAL_CHAT="$PWD/build/dev/minimal_chat"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
"$out/tests"
