/* AArch64 system-register and barrier helpers. */
#ifndef GUEST_ARM_H
#define GUEST_ARM_H

#include <stdint.h>

#define read_sysreg(reg) ({                                       \
    uint64_t __v;                                                 \
    __asm__ volatile ("mrs %0, " #reg : "=r"(__v));               \
    __v;                                                          \
})

#define write_sysreg(reg, val) do {                               \
    uint64_t __v = (uint64_t)(val);                               \
    __asm__ volatile ("msr " #reg ", %0" : : "r"(__v) : "memory"); \
} while (0)

static inline void isb(void) { __asm__ volatile ("isb" : : : "memory"); }
static inline void dsb_sy(void) { __asm__ volatile ("dsb sy" : : : "memory"); }
static inline void wfi(void) { __asm__ volatile ("wfi" : : : "memory"); }

/* DAIF.I: mask / unmask IRQs. */
static inline void irq_disable(void) { __asm__ volatile ("msr daifset, #2" : : : "memory"); }
static inline void irq_enable(void)  { __asm__ volatile ("msr daifclr, #2" : : : "memory"); }

/* ESR_EL1 fields (architectural). */
#define ESR_EC(esr)    (((esr) >> 26) & 0x3f)
#define ESR_IL(esr)    (((esr) >> 25) & 1)
#define ESR_ISS(esr)   ((esr) & 0x1ffffff)
#define ESR_DFSC(esr)  ((esr) & 0x3f)          /* data/instruction abort status code */
#define ESR_WNR(esr)   (((esr) >> 6) & 1)      /* data abort: write, not read */

#define EC_UNKNOWN     0x00
#define EC_SVC64       0x15
#define EC_HVC64       0x16
#define EC_IABT_CUR    0x21
#define EC_PC_ALIGN    0x22
#define EC_DABT_CUR    0x25
#define EC_SP_ALIGN    0x26
#define EC_BRK64       0x3c

#define DFSC_SYNC_EXT  0x10                    /* synchronous external abort */

#endif
