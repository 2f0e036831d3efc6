/*
 * q_mmu: S-mode code runs through the MMU (Sv32) at a virtual address that is
 * not its physical one, and the counters count it.
 *
 * Root table: identity megapages for 0x0 (finisher), 0x10000000 (UART) and
 * 0x80000000 (RAM), plus an alias VA 0x40000000 -> PA 0x80000000. M-mode
 * mrets to the alias of `smode`, which runs a 100-iteration loop between
 * counter reads, loads a word through the alias and ecalls.
 *
 *   s2  rdcycle delta around the loop (cycle = icount on QEMU -icount)
 *   s3  rdinstret delta around the loop
 *   s4  mcause of the ecall (9: ecall from S)
 *   s5  loop iterations (100)
 *   s7  auipc in smode: the VA it runs at (0x4000xxxx)
 *   s8  mepc of the ecall (a VA)
 *   s9  word loaded through the alias
 * Only counter deltas are printed: absolute values on QEMU include its
 * startup icount bias.
 */
#include "macros.inc"
    .section .text.init
    .globl _start
_start:
    PMP_ALLOW_ALL
    la t0, mtrap
    csrw mtvec, t0
    li t0, 7
    csrw mcounteren, t0                // CY, TM, IR readable from S
    la t1, ptable
    li t2, 0xCF                        // V R W X A D
    sw t2, 0(t1)                       // VA 0x00000000 -> PA 0 (finisher)
    li t2, (0x10000 << 10) | 0xCF
    sw t2, (0x040*4)(t1)               // VA 0x10000000 (UART)
    li t2, (0x80000 << 10) | 0xCF
    li t3, 0x200*4
    add t3, t3, t1
    sw t2, 0(t3)                       // VA 0x80000000 identity
    li t3, 0x100*4
    add t3, t3, t1
    sw t2, 0(t3)                       // VA 0x40000000 alias of 0x80000000
    srli t1, t1, 12
    li t2, 0x80000000                  // MODE = Sv32
    or t1, t1, t2
    csrw satp, t1
    sfence.vma
    la t0, smode
    li t1, 0x40000000
    sub t0, t0, t1                     // alias VA of smode
    csrw mepc, t0
    SET_MPP 0x800
    mret

    .balign 4
smode:                                 // runs at VA 0x4000xxxx
    auipc s7, 0
    rdinstret s10
    rdcycle s11
    li s6, 100
1:  addi s5, s5, 1
    addi s6, s6, -1
    bnez s6, 1b
    rdinstret t0
    rdcycle t1
    sub s3, t0, s10
    sub s2, t1, s11
    la t0, magic                       // pc-relative: the alias VA of magic
    lw s9, 0(t0)
    ecall

    .balign 4
mtrap:
    csrr s4, mcause
    csrr s8, mepc
    csrw satp, zero
    j dump

    .data
    .balign 4096
ptable: .space 4096
magic:  .word 0x600dcafe
