#!/usr/bin/env bash
# Installs the build and test dependencies, then configures, builds and runs every test of the
# dev preset (Debug, warnings as errors): the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh --tests
exec cmake --workflow --preset dev
