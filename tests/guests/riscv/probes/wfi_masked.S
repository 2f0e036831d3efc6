/*
 * wfi_masked: wfi with the machine timer pending but masked (mtimecmp = 0,
 * mie = MEIE only) and nothing else that can ever wake the hart. On QEMU the
 * hart sleeps forever (no output, never exits), so this probe has no
 * expected/ file and is not run on QEMU: the test checks instead that
 * chronicorn stops at once with RunKind.IDLE_FOREVER (at the wfi, no output)
 * rather than spinning or treating the masked timer as a wakeup. If wfi
 * returned, the probe would print its registers and exit, and the test
 * would fail. wfi_masked_msip is the QEMU-comparable companion.
 */
    .section .text.init
    .globl _start
_start:
    la t0, trap
    csrw mtvec, t0
    li t0, 0x02004000     // mtimecmp = 0: the timer is pending at once
    sw zero, 0(t0)
    sw zero, 4(t0)
    li t0, 0x800          // MEIE only (no UART interrupt is enabled)
    csrw mie, t0
    wfi
    li s1, 1              // reached only if wfi returned
    j dump

    .balign 4
trap:
    csrr s2, mcause
    j dump
