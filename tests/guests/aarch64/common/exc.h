/*
 * Exceptions. start.S's vector table saves x0-x30, ELR_EL1 and SPSR_EL1 in
 * a struct exc_frame on the stack and calls a C handler; when it returns,
 * ELR_EL1/SPSR_EL1 and x0-x30 are reloaded from the frame (so a handler may
 * change them, e.g. step ELR past a faulting instruction) and it erets.
 *
 * Guests define the handlers they need; runtime.c has weak defaults that
 * print "unexpected ..." and power off.
 */
#ifndef GUEST_EXC_H
#define GUEST_EXC_H

#include <stdint.h>

struct exc_frame {
    uint64_t x[31];     /* x0..x30 */
    uint64_t elr;       /* ELR_EL1 */
    uint64_t spsr;      /* SPSR_EL1 */
    uint64_t pad;       /* keeps the frame a multiple of 16 bytes (272) */
};

/* Which vector: (group << 2) | type, group 0 current EL SP0, 1 current EL
 * SPx, 2 lower EL AArch64, 3 lower EL AArch32; type 0 sync, 1 IRQ, 2 FIQ,
 * 3 SError. The guests run at EL1h, so only 4 (sync) and 5 (IRQ) are
 * expected. */
#define VEC_SYNC_SPX 4
#define VEC_IRQ_SPX  5

void sync_handler(struct exc_frame *f);              /* VEC_SYNC_SPX */
void irq_handler(struct exc_frame *f);               /* VEC_IRQ_SPX */
void unexpected_exception(struct exc_frame *f, unsigned vec) __attribute__((noreturn));

#endif
