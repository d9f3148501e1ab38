#!/usr/bin/env bash
# Compile time and size of the README's snippet (tools/compile_time/snippet.cpp), the figures
# quoted under "Compile time and size" in the README:
#   header-only     the snippet built from include/ alone
#   separate        the snippet as a user unit of wschat::compiled (WSCHAT_SEPARATE_COMPILATION),
#                   the library (src/wschat.cpp) built beforehand and only linked
#   bare Asio       tools/compile_time/bare_asio.cpp: an Asio TCP echo server, the yardstick
# Each is one `$CXX -O2` compile-and-link, timed in CPU seconds (user + system, the median of
# --runs, default 5: wall time is noisy on a shared machine). Prints the times, the ratios to
# bare Asio and the stripped size of the snippet. Informational: it fails only when a build does.
#
#     bash tools/compile-time.sh [--runs N]        (CXX=clang++-14 to time another compiler)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=5
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs="$2"; shift 2 ;;
    *) echo "usage: $0 [--runs N]" >&2; exit 2 ;;
    esac
done
cxx=${CXX:-g++}
flags=(-O2 -std=c++17 -DASIO_STANDALONE -I"$root/include")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# CPU seconds of one run of "$@" (which must succeed).
cpu_seconds() {
    if ! /usr/bin/time -f '%U %S' -o "$tmp/time" "$@" 2>"$tmp/log"; then
        cat "$tmp/log" >&2
        echo "compile-time.sh: FAILED: $*" >&2
        exit 1
    fi
    awk '{ printf "%.2f\n", $1 + $2 }' "$tmp/time"
}

# The median CPU seconds of $runs runs of "$@".
median_seconds() {
    for _ in $(seq "$runs"); do cpu_seconds "$@"; done | sort -n |
        awk '{ t[NR] = $1 } END { printf "%.2f", NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

snippet="$root/tools/compile_time/snippet.cpp"
library=$(cpu_seconds "$cxx" "${flags[@]}" -c "$root/src/wschat.cpp" -o "$tmp/wschat.o")
bare=$(median_seconds "$cxx" "${flags[@]}" "$root/tools/compile_time/bare_asio.cpp" -pthread \
    -o "$tmp/bare_asio")
header_only=$(median_seconds "$cxx" "${flags[@]}" "$snippet" -pthread -o "$tmp/snippet")
separate=$(median_seconds "$cxx" "${flags[@]}" -DWSCHAT_SEPARATE_COMPILATION "$snippet" \
    "$tmp/wschat.o" -pthread -o "$tmp/snippet_separate")
strip -o "$tmp/snippet.stripped" "$tmp/snippet"
strip -o "$tmp/snippet_separate.stripped" "$tmp/snippet_separate"
size=$(stat -c %s "$tmp/snippet.stripped")
size_separate=$(stat -c %s "$tmp/snippet_separate.stripped")

echo "compile time, $cxx -O2, CPU seconds (user + sys), median of $runs, compile and link:"
printf '  %-34s %6s s\n' "bare Asio echo server" "$bare"
printf '  %-34s %6s s  %5sx bare Asio (README target <= 2.5x)\n' "snippet, header-only" \
    "$header_only" "$(ratio "$header_only" "$bare")"
printf '  %-34s %6s s  %5sx bare Asio (README target <= 1.3x)\n' "snippet, separate compilation" \
    "$separate" "$(ratio "$separate" "$bare")"
printf '  %-34s %6s s  (once, src/wschat.cpp)\n' "wschat::compiled library" "$library"
echo "stripped size of the snippet:"
printf '  %-34s %6s KB (README target <= 250 KB)\n' "header-only" "$((size / 1024))"
printf '  %-34s %6s KB\n' "separate compilation" "$((size_separate / 1024))"
