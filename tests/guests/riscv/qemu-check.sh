#!/bin/sh
# Run every guest on QEMU and compare its UART output with expected/.
# Usage: ./qemu-check.sh [build-dir]     (run from anywhere; needs qemu-system-riscv32/64)
# Exit status: 0 if everything matched.
set -u
cd "$(dirname "$0")"
BUILD=${1:-build}
QEMU_ARGS="-M virt -m 128M -bios none -nographic"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# check ARCH GUEST EXPECTED-FILE EXPECTED-STATUS TIMEOUT [INPUT-FILE]
check() {
    arch=$1 guest=$2 exp=$3 want_rc=$4 secs=$5 input=${6:-/dev/null}
    qemu=qemu-system-riscv${arch#rv}
    timeout "$secs" $qemu $QEMU_ARGS -kernel "$BUILD/$arch/$guest.elf" \
        <"$input" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" = "$want_rc" ] && cmp -s "$tmp/out" "$exp"; then
        echo "PASS $arch $guest"
    else
        echo "FAIL $arch $guest (status $rc, want $want_rc)"
        diff "$exp" "$tmp/out" | sed 's/^/    /'
        fail=1
    fi
}

for arch in rv32 rv64; do
    check $arch hello   expected/hello.$arch.out 0 20
    check $arch timer   expected/timer.out       0 20
    check $arch echo    expected/echo.out        0 20 expected/echo.in
    check $arch compute expected/compute.out     0 60
    check $arch traps   expected/traps.out       0 20
    # fault never exits on QEMU (the access fault vectors to address 0,
    # which faults forever), so it is stopped by timeout (status 124).
    check $arch fault   expected/fault.out     124 3
done
exit $fail
