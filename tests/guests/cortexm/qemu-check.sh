#!/bin/sh
# Run every guest on QEMU (mps2-an385) and compare its UART output with expected/.
# Usage: ./qemu-check.sh [build-dir]     (run from anywhere; needs qemu-system-arm)
# Exit status: 0 if everything matched.
#
# Guests without input run with the plain -nographic command line. Guests
# that read the UART get `-monitor none -serial stdio` as well: with
# -nographic alone UART0 shares stdio with the monitor through a mux, which
# buffers input the CMSDK UART cannot take yet and hands it over only when
# more input arrives (the UART model never asks for it), so the end of a
# piped file can get stuck there (see README.md).
set -u
cd "$(dirname "$0")"
BUILD=${1:-build}
QEMU_ARGS="-M mps2-an385 -nographic -semihosting-config enable=on,target=native"
INPUT_ARGS="-monitor none -serial stdio"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# check GUEST EXPECTED-FILE EXPECTED-STATUS TIMEOUT [INPUT-FILE]
check() {
    guest=$1 exp=$2 want_rc=$3 secs=$4 input=${5:-}
    if [ -n "$input" ]; then
        timeout "$secs" qemu-system-arm $QEMU_ARGS $INPUT_ARGS -kernel "$BUILD/$guest.elf" \
            <"$input" >"$tmp/out" 2>"$tmp/err"
    else
        timeout "$secs" qemu-system-arm $QEMU_ARGS -kernel "$BUILD/$guest.elf" \
            </dev/null >"$tmp/out" 2>"$tmp/err"
    fi
    rc=$?
    name=$guest${input:+ <$input}
    if [ "$rc" = "$want_rc" ] && cmp -s "$tmp/out" "$exp"; then
        echo "PASS $name"
    else
        echo "FAIL $name (status $rc, want $want_rc)"
        diff "$exp" "$tmp/out" | sed 's/^/    /'
        sed 's/^/    stderr: /' "$tmp/err"
        fail=1
    fi
}

check hello     expected/hello.out      0 20
check systick   expected/systick.out    0 20
check echo      expected/echo.out       0 20 expected/echo.in
check pendsv    expected/pendsv.out     0 20
# hardfault ends in its HardFault handler with SYS_EXIT_EXTENDED, code 3.
check hardfault expected/hardfault.out  3 20
check compute   expected/compute.out    0 60
check itblock   expected/itblock.out    0 20
check cmdbug    expected/cmdbug-ok.out  0 20 inputs/cmdbug-ok.txt
check cmdbug    expected/cmdbug-bug.out 0 20 inputs/cmdbug-bug.txt
exit $fail
