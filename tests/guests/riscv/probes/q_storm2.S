/*
 * q_storm2: an S software interrupt injected by M-mode (csrs mip, SSIP before
 * mret, as OpenSBI does for IPIs) is taken exactly once in S-mode when SIE is
 * set, and not again after the S handler clears SSIP (no interrupt storm).
 *
 *   s1  number of S software interrupts taken (1)
 *   s5  loop iterations run to completion (300000 = 0x493e0)
 *   s6  mcause if anything trapped to M (nothing should: 0)
 *   s7  loop bound (300000)
 *   s8  s5 when the first interrupt was taken (0: before the loop)
 *   s9  sepc of the first interrupt (`after_sie`)
 */
#include "macros.inc"
    .section .text.init
    .globl _start
_start:
    PMP_ALLOW_ALL
    la t0, mtrap
    csrw mtvec, t0
    li t0, 0x222
    csrw mideleg, t0
    la t0, strap
    csrw stvec, t0
    li t0, 2
    csrs mie, t0          // SSIE
    li s1, 0
    li s5, 0
    la t0, smode
    csrw mepc, t0
    SET_MPP 0x800
    li t0, 2
    csrs mip, t0          // M-mode injects an S software interrupt
    mret

    .balign 4
smode:
    csrsi sstatus, 2      // SIE: take the pending SSI
after_sie:
    li s5, 0
    li s7, 300000
2:  addi s5, s5, 1
    bne s5, s7, 2b
    j dump

    .balign 4
strap:
    bnez s1, 3f
    mv s8, s5
    csrr s9, sepc
3:  addi s1, s1, 1        // count S software interrupts
    li t1, 50
    bgeu s1, t1, dump     // give up on a storm
    li t0, 2
    csrc sip, t0          // acknowledge (clear SSIP), as Linux does
    sret

    .balign 4
mtrap:
    csrr s6, mcause
    j dump
