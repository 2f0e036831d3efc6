#!/bin/sh
# Run every guest on QEMU and compare its UART output with expected/.
# Usage: ./qemu-check.sh [build-dir]     (run from anywhere; needs qemu-system-aarch64)
# Exit status: 0 if everything matched.
set -u
cd "$(dirname "$0")"
BUILD=${1:-build}
QEMU_ARGS="-M virt -cpu cortex-a72 -m 128M -nographic"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# check NAME ELF EXPECTED-FILE EXPECTED-STATUS TIMEOUT [INPUT-FILE]
# Every guest ends with PSCI SYSTEM_OFF, on which QEMU exits with status 0.
check() {
    name=$1 elf=$2 exp=$3 want_rc=$4 secs=$5 input=${6:-/dev/null}
    timeout "$secs" qemu-system-aarch64 $QEMU_ARGS -kernel "$elf" \
        <"$input" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" = "$want_rc" ] && cmp -s "$tmp/out" "$exp"; then
        echo "PASS $name"
    else
        echo "FAIL $name (status $rc, want $want_rc)"
        diff "$exp" "$tmp/out" | sed 's/^/    /'
        sed 's/^/    stderr: /' "$tmp/err"
        fail=1
    fi
}

check hello       "$BUILD/hello.elf"             expected/hello.out       0 20
check timer       "$BUILD/timer.elf"             expected/timer.out       0 20
check echo        "$BUILD/echo.elf"              expected/echo.out        0 20 expected/echo.in
check compute     "$BUILD/compute.elf"           expected/compute.out     0 60
check compute100m "$BUILD/bench/compute100m.elf" expected/compute100m.out 0 60
check fault       "$BUILD/fault.elf"             expected/fault.out       0 20
check cmdbug-ok   "$BUILD/cmdbug.elf"            expected/cmdbug-ok.out   0 20 inputs/cmdbug-ok.txt
check cmdbug-bug  "$BUILD/cmdbug.elf"            expected/cmdbug-bug.out  0 20 inputs/cmdbug-bug.txt
exit $fail
