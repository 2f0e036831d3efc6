/*
 * q_smret: mret executed in S-mode is an illegal instruction (trap to M),
 * not a no-op and not a return.
 *
 *   s1  1 (S-mode was reached)
 *   s2  2 only if execution went past the mret (it must not)
 *   s3  mcause (2: illegal instruction)
 *   s4  mepc (the mret)
 */
    .section .text.init
    .globl _start
_start:
    li t0, -1
    csrw pmpaddr0, t0
    li t0, 0x1f
    csrw pmpcfg0, t0
    la t0, mtrap
    csrw mtvec, t0
    la t0, smode
    csrw mepc, t0
    li t0, 0x1800
    csrc mstatus, t0
    li t0, 0x0800         // MPP = S
    csrs mstatus, t0
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
