/*
 * q_smret: mret executed in S-mode is an illegal instruction (trap to M),
 * not a no-op and not a return.
 *
 *   s1  1 (S-mode was reached)
 *   s2  2 only if execution went past the mret (it must not)
 *   s3  mcause (2: illegal instruction)
 *   s4  mepc (the mret)
 */
#include "macros.inc"
    .section .text.init
    .globl _start
_start:
    PMP_ALLOW_ALL
    la t0, mtrap
    csrw mtvec, t0
    la t0, smode
    csrw mepc, t0
    SET_MPP 0x800
    mret

    .balign 4
smode:
    li s1, 1
    mret                  // illegal in S-mode
    li s2, 2
    j dump

    .balign 4
mtrap:
    csrr s3, mcause
    csrr s4, mepc
    j dump
