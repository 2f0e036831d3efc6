#!/usr/bin/env bash
# Install what is missing, then run the whole test suite.
# Usage: ./scripts/test.sh [pytest arguments]   e.g. -m "not slow": the fast subset (each module, rv32 for e2e)
set -euo pipefail
cd "$(dirname "$0")/.."
# Every tool a test needs (under CHRONICORN_REQUIRE_TOOLS=1, as in .ci/run, a missing one fails its tests):
#   gdb-multiarch (e2e, target description), qemu-system-misc and opensbi (QEMU comparisons), u-boot-qemu and
#   e2fsprogs (U-Boot reading an ext2 virtio disk, on QEMU and chronicorn), tcpdump (reading --pcap files),
#   gcc-riscv64-unknown-elf and make (rebuilding the committed guests), gcc and libc6-dev (the native helper),
#   qemu-system-arm, gcc-aarch64-linux-gnu and gcc-arm-none-eabi (the Arm boards: QEMU comparisons, guest rebuilds),
#   device-tree-compiler (dtc: the Arm device tree compared with QEMU's as text), chromium (the headless browser
#   that loads `chronicorn view`'s page, driven by Playwright from PyPI), linux-source-6.1, gcc-riscv64-linux-gnu,
#   bc, flex, bison, xz-utils (the Linux guest, rebuilt from Debian's kernel source: tests/guests/linux).
#   scripts/setup.sh adds cmake, make and patch (Unicorn rebuilt with chronicorn's patches: third_party/unicorn).
CHRONICORN_APT_PACKAGES="gdb-multiarch qemu-system-misc qemu-system-arm opensbi u-boot-qemu e2fsprogs tcpdump \
device-tree-compiler chromium \
gcc-riscv64-unknown-elf gcc-aarch64-linux-gnu gcc-arm-none-eabi make gcc libc6-dev \
linux-source-6.1 gcc-riscv64-linux-gnu bc flex bison xz-utils" \
    . scripts/setup.sh
exec "$PY" -m pytest "$@"
