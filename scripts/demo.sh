#!/usr/bin/env bash
# Install what is missing, then run the bundled example firmware on chronicorn.
# (Until the reverse-debugging demo lands, this shows the machine running real guests.)
set -euo pipefail
cd "$(dirname "$0")/.."
CHRONICORN_APT_PACKAGES="gdb-multiarch" . scripts/setup.sh
G=tests/guests/riscv/build
run() { echo; echo "\$ $*"; "$@" || echo "(exit code $?)"; }
run "$VENV/bin/chronicorn" run $G/rv32/hello.elf
run "$VENV/bin/chronicorn" run $G/rv64/timer.elf
echo; echo "\$ printf 'hello chronicorn\\nq' | chronicorn run $G/rv32/echo.elf"
printf 'hello chronicorn\nq' | "$VENV/bin/chronicorn" run $G/rv32/echo.elf
run "$VENV/bin/chronicorn" run $G/rv32/fault.elf
run "$VENV/bin/chronicorn" run $G/rv64/hello.elf --trace --max-insns 12
