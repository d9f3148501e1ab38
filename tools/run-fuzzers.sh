#!/usr/bin/env bash
# Builds and runs the libFuzzer targets in tests/fuzz/ (frame parser, handshake, UTF-8,
# permessage-deflate).
#
#   tools/run-fuzzers.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60; TARGET is frame_parser, handshake, utf8 or deflate (default:
# all; deflate links zlib).
# Each target is built with clang++-14 (override with CXX=...) and
# -fsanitize=fuzzer,address,undefined into a temporary directory, then all run at once,
# each over a COPY of tests/fuzz/corpus/<target>/ (the committed seeds are never modified).
# Exits 0 when no target found anything; otherwise prints each crash/leak/timeout/OOM input
# with the command that reproduces it, keeps the temporary directory, and exits 1. Exits 2 on
# a build error.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(frame_parser handshake utf8 deflate)
case "$seconds" in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
    ;;
esac

for target in "${targets[@]}"; do
    if [ ! -f "tests/fuzz/fuzz_${target}.cpp" ] || [ ! -d "tests/fuzz/corpus/${target}" ]; then
        echo "unknown fuzz target '${target}' (no tests/fuzz/fuzz_${target}.cpp or" \
            "tests/fuzz/corpus/${target}/)" >&2
        exit 2
    fi
done

cxx="${CXX:-clang++-14}"
cxxflags=(-std=c++17 -O1 -g "-fsanitize=fuzzer,address,undefined"
    -fno-sanitize-recover=undefined -DASIO_STANDALONE -Iinclude)

work="$(mktemp -d "${TMPDIR:-/tmp}/wschat-fuzz.XXXXXX")"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# Build every target first, then fuzz them all at once: each runs for SECONDS on its own
# process, so the whole step takes about SECONDS however many targets there are.
for target in "${targets[@]}"; do
    dir="${work}/${target}"
    mkdir -p "${dir}/corpus" "${dir}/artifacts"
    cp "tests/fuzz/corpus/${target}"/* "${dir}/corpus/"
    echo "== ${target}: building"
    libs=()
    [ "$target" != deflate ] || libs=(-lz)
    if ! "$cxx" "${cxxflags[@]}" "tests/fuzz/fuzz_${target}.cpp" -o "${dir}/fuzz_${target}" \
        "${libs[@]}"; then
        echo "build of tests/fuzz/fuzz_${target}.cpp failed; kept ${work}" >&2
        exit 2
    fi
done

pids=()
for target in "${targets[@]}"; do
    dir="${work}/${target}"
    dict=()
    [ ! -f "tests/fuzz/${target}.dict" ] || dict=("-dict=tests/fuzz/${target}.dict")
    echo "== ${target}: fuzzing for ${seconds} s over a copy of tests/fuzz/corpus/${target}/"
    "${dir}/fuzz_${target}" "${dict[@]}" -max_total_time="$seconds" -rss_limit_mb=2048 \
        -timeout=10 -print_final_stats=1 -artifact_prefix="${dir}/artifacts/" \
        "${dir}/corpus" >"${dir}/fuzz.log" 2>&1 &
    pids+=("$!")
done

failed=0
for i in "${!targets[@]}"; do
    target="${targets[$i]}"
    dir="${work}/${target}"
    status=0
    wait "${pids[$i]}" || status=$?
    grep -E '^(#[0-9]+[[:space:]]+DONE|Done [0-9]+ runs|stat::number_of_executed_units)' \
        "${dir}/fuzz.log" | sed "s/^/${target}: /" || true

    findings=()
    for artifact in "${dir}/artifacts/"*; do
        case "$(basename "$artifact")" in
        crash-* | leak-* | timeout-* | oom-*) findings+=("$artifact") ;;
        esac
    done
    if [ "$status" -ne 0 ] || [ "${#findings[@]}" -gt 0 ]; then
        failed=1
        echo "!! ${target}: FINDING (fuzzer exit status ${status}); log: ${dir}/fuzz.log" >&2
        grep -E 'ERROR: |SUMMARY: |runtime error' "${dir}/fuzz.log" | head -n 5 >&2 || true
        for artifact in "${findings[@]}"; do
            echo "   input:     ${artifact}" >&2
            echo "   reproduce: ${dir}/fuzz_${target} ${artifact}" >&2
        done
        echo "   rebuild:   ${cxx} ${cxxflags[*]} tests/fuzz/fuzz_${target}.cpp" \
            "-o fuzz_${target} (and -lz for deflate)" >&2
    else
        echo "== ${target}: no findings"
    fi
done

if [ "$failed" -ne 0 ]; then
    echo "fuzzing found problems; inputs and binaries kept in ${work}" >&2
    exit 1
fi
rm -rf "$work"
echo "all fuzz targets ran clean (${seconds} s each)"
