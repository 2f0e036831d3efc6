/*
 * wfi_masked_msip: QEMU-comparable companion of wfi_masked. The machine timer
 * is pending but masked, as in wfi_masked, and a second, enabled interrupt
 * source is armed: CLINT msip = 1 with mie = MSIE, but mstatus.MIE = 0, so
 * no trap is taken. wfi must return (an enabled pending interrupt ends wfi
 * even with MIE clear) and execution continues after it.
 *
 *   s1  1: execution went past the wfi
 *   s2  mip after the wfi (MTIP | MSIP = 0x88)
 *   s3  mie (MSIE = 0x8)
 *   s4  mip after msip is cleared again (MTIP = 0x80)
 *   s6  mcause if a trap was taken (none should be: 0)
 */
    .section .text.init
    .globl _start
_start:
    la t0, trap
    csrw mtvec, t0
    csrci mstatus, 8      // MIE = 0
    li t0, 0x02004000     // mtimecmp = 0: the timer is pending at once
    sw zero, 0(t0)
    sw zero, 4(t0)
    li t0, 0x8            // MSIE only: the timer stays masked
    csrw mie, t0
    li t0, 0x02000000
    li t1, 1
    sw t1, 0(t0)          // msip = 1
    wfi
    li s1, 1
    csrr s2, mip
    csrr s3, mie
    li t0, 0x02000000
    sw zero, 0(t0)        // msip = 0
    csrr s4, mip
    j dump

    .balign 4
trap:
    csrr s6, mcause
    j dump
