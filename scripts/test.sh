#!/usr/bin/env bash
# Install what is missing, then run the whole test suite.
# Usage: ./scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
CHRONICORN_APT_PACKAGES="gdb-multiarch qemu-system-misc opensbi gcc-riscv64-unknown-elf make" . scripts/setup.sh
exec "$PY" -m pytest "$@"
