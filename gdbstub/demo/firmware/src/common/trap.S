/*
 * Machine-mode trap entry. Saves all caller-saved registers on the current
 * stack, calls
 *     unsigned long trap_handler(unsigned long mcause,
 *                                unsigned long mepc,
 *                                unsigned long mtval);
 * writes its return value to mepc, restores the registers and mrets.
 * Callee-saved registers are preserved by the C handler itself.
 */
#if __riscv_xlen == 64
#define STORE sd
#define LOAD  ld
#define REGBYTES 8
#else
#define STORE sw
#define LOAD  lw
#define REGBYTES 4
#endif
#define FRAME (16 * REGBYTES)   /* 16 registers: 64 bytes (rv32) / 128 (rv64), 16-aligned */

    .section .text
    .balign 4                   /* mtvec (direct mode) needs 4-byte alignment */
    .globl trap_entry
    .type trap_entry, @function
trap_entry:
    addi    sp, sp, -FRAME
    STORE   ra,  0 * REGBYTES(sp)
    STORE   t0,  1 * REGBYTES(sp)
    STORE   t1,  2 * REGBYTES(sp)
    STORE   t2,  3 * REGBYTES(sp)
    STORE   a0,  4 * REGBYTES(sp)
    STORE   a1,  5 * REGBYTES(sp)
    STORE   a2,  6 * REGBYTES(sp)
    STORE   a3,  7 * REGBYTES(sp)
    STORE   a4,  8 * REGBYTES(sp)
    STORE   a5,  9 * REGBYTES(sp)
    STORE   a6, 10 * REGBYTES(sp)
    STORE   a7, 11 * REGBYTES(sp)
    STORE   t3, 12 * REGBYTES(sp)
    STORE   t4, 13 * REGBYTES(sp)
    STORE   t5, 14 * REGBYTES(sp)
    STORE   t6, 15 * REGBYTES(sp)

    csrr    a0, mcause
    csrr    a1, mepc
    csrr    a2, mtval
    call    trap_handler
    csrw    mepc, a0

    LOAD    ra,  0 * REGBYTES(sp)
    LOAD    t0,  1 * REGBYTES(sp)
    LOAD    t1,  2 * REGBYTES(sp)
    LOAD    t2,  3 * REGBYTES(sp)
    LOAD    a0,  4 * REGBYTES(sp)
    LOAD    a1,  5 * REGBYTES(sp)
    LOAD    a2,  6 * REGBYTES(sp)
    LOAD    a3,  7 * REGBYTES(sp)
    LOAD    a4,  8 * REGBYTES(sp)
    LOAD    a5,  9 * REGBYTES(sp)
    LOAD    a6, 10 * REGBYTES(sp)
    LOAD    a7, 11 * REGBYTES(sp)
    LOAD    t3, 12 * REGBYTES(sp)
    LOAD    t4, 13 * REGBYTES(sp)
    LOAD    t5, 14 * REGBYTES(sp)
    LOAD    t6, 15 * REGBYTES(sp)
    addi    sp, sp, FRAME
    mret
    .size trap_entry, . - trap_entry
