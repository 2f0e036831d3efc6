/*
 * q_umie: `csrw mie` from U-mode is an illegal instruction; the trap to M
 * comes before the ecall, and the counters count the U-mode instructions.
 *
 *   s6  mcause (2: illegal instruction)
 *   s7  minstret delta from _start to the trap handler
 *   s8  mcycle delta from _start to the trap handler
 * Only counter deltas are printed (absolute values include QEMU's startup bias).
 */
#include "macros.inc"
    .section .text.init
    .globl _start
_start:
    csrr s10, minstret
    csrr s11, mcycle
    PMP_ALLOW_ALL
    la t0, mtrap
    csrw mtvec, t0
    la t0, umode
    csrw mepc, t0
    SET_MPP 0
    mret

    .balign 4
umode:
    li t0, 0x1000000
    csrw mie, t0          // illegal from U-mode
    ecall

    .balign 4
mtrap:
    csrr s6, mcause
    csrr s7, minstret
    csrr s8, mcycle
    sub s7, s7, s10
    sub s8, s8, s11
    j dump
