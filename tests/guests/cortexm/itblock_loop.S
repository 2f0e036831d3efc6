/*
 * itblock: the loop with the IT blocks (see itblock.c).
 *
 * uint32_t it_kernel(uint32_t *buf, uint32_t n, uint32_t seed)
 *   buf: 64 words (two halves of 32: r0 and r12 = buf + 32), n > 0
 *   iterations, seed != 0 (xorshift32 state). Returns the accumulator.
 *
 * Each iteration has five IT blocks: ITTE (add, load | store), ITTT (add,
 * load, store), ITETE (ror, add, store, store: four instructions, the
 * longest block), IT with a 16-bit mov, and IT with a branch as its last
 * instruction (the only place a branch may be in an IT block). Conditional
 * instructions that fail their condition still count as executed.
 */
    .syntax unified
    .thumb
    .text
    .globl  it_kernel
    .type   it_kernel, %function
    .thumb_func
it_kernel:
    push    {r4-r7, lr}
    mov     r3, r2                  /* x = seed */
    movs    r4, #0                  /* acc */
    movs    r7, #0                  /* t: the last value loaded */
    add     r12, r0, #128           /* upper half of buf */
.Lloop:
    eor     r3, r3, r3, lsl #13     /* xorshift32 */
    eor     r3, r3, r3, lsr #17
    eor     r3, r3, r3, lsl #5
    and     r6, r3, #31             /* j = x & 31 */

    tst     r3, #0x100
    itte    ne
    addne   r4, r4, r3              /* bit 8 set: acc += x, t = buf[j] */
    ldrne   r7, [r0, r6, lsl #2]
    streq   r4, [r12, r6, lsl #2]   /* clear: buf[32 + j] = acc */

    lsrs    r5, r3, #27             /* k = x >> 27 */
    cmp     r5, #16
    ittt    lo
    addlo   r4, r4, r5              /* k < 16: acc += k, t = buf[32 + k], buf[k] = acc */
    ldrlo   r7, [r12, r5, lsl #2]
    strlo   r4, [r0, r5, lsl #2]

    eor     r4, r4, r7

    tst     r3, #1
    itete   eq
    roreq   r4, r4, #7              /* bit 0 clear: acc = ror(acc, 7), buf[j] = x */
    addne   r4, r4, #1              /* set: acc += 1, buf[32 + j] = acc */
    streq   r3, [r0, r6, lsl #2]
    strne   r4, [r12, r6, lsl #2]

    cmp     r6, r5
    it      hi
    movhi   r6, r5                  /* j = min(j, k) */

    cmp     r6, #0
    it      eq
    beq     .Lskip                  /* j == 0: skip the add */
    add     r4, r4, r6, lsl #1      /* acc += 2 * j */
.Lskip:
    subs    r1, r1, #1
    bne     .Lloop

    mov     r0, r4
    pop     {r4-r7, pc}
    .size   it_kernel, . - it_kernel
