/*
 * q_smc: self-modifying code with fence.i. Code is written into .data and
 * run; the same bytes are then rewritten and run again. Checks that stale
 * translations are not run, that CSR reads in written code are handled
 * (CSR hooks), and that instruction counts follow the rewritten code.
 *
 *   s1  address of buf2
 *   s2  mcycle delta: `csrr a0, mcycle` run from buf vs a read just before
 *   s3  42: buf rewritten to `li a0, 42; ret`
 *   s6  minstret delta: buf rewritten again, to `csrr a0, minstret; ret`
 *   s4  minstret delta over 100 calls of buf2 = `addi a0,a0,1; ret`
 *   s5  minstret delta over 100 calls of buf2 rewritten (same address, same
 *       size) to `c.addi a0,1; c.addi a0,1; ret`
 * Only counter deltas are printed (absolute values include QEMU's startup bias).
 */
    .section .text.init
    .globl _start
_start:
    la s0, buf
    // v1 at buf: csrr a0, mcycle ; ret
    li t0, 0xb0002573
    sw t0, 0(s0)
    li t0, 0x8082
    sh t0, 4(s0)
    fence.i
    csrr s10, mcycle
    jalr s0
    sub s2, a0, s10
    // v2 at buf: li a0, 42 ; ret
    li t0, 0x02a00513
    sw t0, 0(s0)
    fence.i
    jalr s0
    mv s3, a0
    // v2b at buf: csrr a0, minstret ; ret
    li t0, 0xb0202573
    sw t0, 0(s0)
    fence.i
    csrr s10, minstret
    jalr s0
    sub s6, a0, s10
    // v3 at buf2: addi a0, a0, 1 (4 bytes) ; ret (2 bytes)
    la s1, buf2
    li t0, 0x00150513
    sw t0, 0(s1)
    li t0, 0x8082
    sh t0, 4(s1)
    fence.i
    csrr s4, minstret
    li s7, 100
1:  jalr s1
    addi s7, s7, -1
    bnez s7, 1b
    csrr t2, minstret
    sub s4, t2, s4
    // v4 at buf2: c.addi a0,1 ; c.addi a0,1 ; ret (same 6 bytes, 3 instructions)
    li t0, 0x05050505
    sw t0, 0(s1)
    fence.i
    csrr s5, minstret
    li s7, 100
2:  jalr s1
    addi s7, s7, -1
    bnez s7, 2b
    csrr t2, minstret
    sub s5, t2, s5
    j dump

    .data
    .balign 16
buf:  .space 64
    .balign 64
buf2: .space 64
