#!/usr/bin/env bash
# The bug hunt: install what is missing (gdb-multiarch, a virtualenv), then run `chronicorn demo`:
# record the example firmware with the input that breaks it, and let gdb find the culprit going backward.
set -euo pipefail
cd "$(dirname "$0")/.."
CHRONICORN_APT_PACKAGES="gdb-multiarch" CHRONICORN_PIP_TARGET="." CHRONICORN_NEEDS="machine, pygdbmi" \
    . scripts/setup.sh
exec "$VENV/bin/chronicorn" demo "$@"
