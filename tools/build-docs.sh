#!/usr/bin/env bash
# Builds the API reference with doxygen (docs/Doxyfile) into build/docs/html and fails when
# doxygen reports anything: an undocumented public name, a broken reference or a markup
# error. The warnings are printed and also kept in build/docs/warnings.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v doxygen >/dev/null; then
    echo "build-docs: doxygen not found (Debian: apt-get install doxygen," \
        "or tools/install-deps.sh --tests)" >&2
    exit 1
fi

# A fresh output directory, so pages of names that no longer exist do not linger.
rm -rf build/docs
mkdir -p build/docs
status=0
doxygen docs/Doxyfile 2>build/docs/warnings.txt >/dev/null || status=$?
if [ -s build/docs/warnings.txt ] || [ "$status" -ne 0 ]; then
    cat build/docs/warnings.txt >&2
    echo "build-docs: doxygen exit $status, $(wc -l <build/docs/warnings.txt) warning line(s)" >&2
    exit 1
fi
echo "API reference: build/docs/html/index.html (no warnings)"
