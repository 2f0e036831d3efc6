/*
 * q_smode: sip read from S-mode shows a delegated pending interrupt, and an
 * S software interrupt raised from S-mode (csrs sip, SSIP) is taken at once.
 *
 *   s2  sip as first read in S-mode (STIP set by M-mode, delegated: 0x20)
 *   s3  scause (0x80000001: S software interrupt)
 *   s4  sepc (`after`, the instruction after the csrs)
 *   s5  1 only if execution fell through past `after` (it must not)
 *   s6, s7  mcause, mepc if anything trapped to M (nothing should)
 */
#include "macros.inc"
    .section .text.init
    .globl _start
_start:
    PMP_ALLOW_ALL
    la t0, mtrap
    csrw mtvec, t0
    li t0, 0x222
    csrw mideleg, t0      // SSI, STI, SEI to S
    li t0, 0x20
    csrs mip, t0          // STIP (software-writable from M)
    la t0, smode
    csrw mepc, t0
    SET_MPP 0x800
    mret

    .balign 4
smode:
    csrr s2, sip
    la t0, strap
    csrw stvec, t0
    li t0, 2
    csrs sie, t0          // SSIE
    csrsi sstatus, 2      // SIE
    csrs sip, t0          // SSIP: the S software interrupt is taken right here
after:
    li s5, 1
    j dump

    .balign 4
strap:
    csrr s3, scause
    csrr s4, sepc
    j dump

    .balign 4
mtrap:
    csrr s6, mcause
    csrr s7, mepc
    j dump
