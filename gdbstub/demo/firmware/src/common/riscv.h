/* CSR helpers and trap plumbing for chronicorn RISC-V test guests. */
#ifndef GUEST_RISCV_H
#define GUEST_RISCV_H

#define csr_read(csr) ({                                        \
    unsigned long __v;                                          \
    __asm__ volatile ("csrr %0, " #csr : "=r"(__v) :: "memory"); \
    __v; })

#define csr_write(csr, val) ({                                  \
    unsigned long __v = (unsigned long)(val);                   \
    __asm__ volatile ("csrw " #csr ", %0" :: "rK"(__v) : "memory"); })

#define csr_set(csr, bits) ({                                   \
    unsigned long __v = (unsigned long)(bits);                  \
    __asm__ volatile ("csrs " #csr ", %0" :: "rK"(__v) : "memory"); })

#define csr_clear(csr, bits) ({                                 \
    unsigned long __v = (unsigned long)(bits);                  \
    __asm__ volatile ("csrc " #csr ", %0" :: "rK"(__v) : "memory"); })

static inline void wfi(void) { __asm__ volatile ("wfi" ::: "memory"); }

#define MSTATUS_MIE   (1UL << 3)
#define MIE_MSIE      (1UL << 3)
#define MIE_MTIE      (1UL << 7)
#define MIE_MEIE      (1UL << 11)

#define MCAUSE_INTERRUPT  (1UL << (__riscv_xlen - 1))
#define IRQ_M_SOFT        3
#define IRQ_M_TIMER       7
#define IRQ_M_EXT         11

#define CAUSE_MISALIGNED_FETCH    0
#define CAUSE_FETCH_ACCESS        1
#define CAUSE_ILLEGAL_INSTRUCTION 2
#define CAUSE_BREAKPOINT          3
#define CAUSE_MISALIGNED_LOAD     4
#define CAUSE_LOAD_ACCESS         5
#define CAUSE_MISALIGNED_STORE    6
#define CAUSE_STORE_ACCESS        7
#define CAUSE_M_ECALL             11

/* Assembly trap entry (common/trap.S). */
void trap_entry(void);

/*
 * C trap handler called by trap_entry; returns the new mepc.
 * common/runtime.c provides a weak default that reports the trap and
 * exits with code 1; guests that take traps define their own.
 */
unsigned long trap_handler(unsigned long mcause, unsigned long mepc,
                           unsigned long mtval);

static inline void install_trap_handler(void)
{
    csr_write(mtvec, (unsigned long)&trap_entry);
}

#endif
