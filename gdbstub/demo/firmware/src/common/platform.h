/* QEMU `virt` board devices used by the chronicorn RISC-V test guests. */
#ifndef GUEST_PLATFORM_H
#define GUEST_PLATFORM_H

#include <stdint.h>

#define MMIO32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))
#define MMIO8(addr)  (*(volatile uint8_t *)(uintptr_t)(addr))

/* ---- SiFive test device ("finisher") -------------------------------- */
#define FINISHER_BASE 0x00100000UL
#define FINISHER_PASS 0x5555u
#define FINISHER_FAIL 0x3333u

/* Exit the machine: 0 -> pass (0x5555), else 0x3333 | (code << 16). */
void guest_exit(int code) __attribute__((noreturn));
void unexpected_trap(const char *who, unsigned long mcause, unsigned long mepc,
                     unsigned long mtval) __attribute__((noreturn));

/* ---- CLINT ---------------------------------------------------------- */
#define CLINT_BASE      0x02000000UL
#define CLINT_MSIP      (CLINT_BASE + 0x0000)   /* hart 0 */
#define CLINT_MTIMECMP  (CLINT_BASE + 0x4000)   /* hart 0, 64-bit */
#define CLINT_MTIME     (CLINT_BASE + 0xBFF8)   /* 64-bit */
#define CLINT_TIMEBASE_HZ 10000000u             /* 10 MHz */

static inline uint64_t clint_read_mtime(void)
{
#if __riscv_xlen == 32
    volatile uint32_t *p = (volatile uint32_t *)CLINT_MTIME;
    uint32_t hi, lo;
    do {
        hi = p[1];
        lo = p[0];
    } while (p[1] != hi);
    return ((uint64_t)hi << 32) | lo;
#else
    return *(volatile uint64_t *)CLINT_MTIME;
#endif
}

static inline void clint_write_mtimecmp(uint64_t value)
{
#if __riscv_xlen == 32
    volatile uint32_t *p = (volatile uint32_t *)CLINT_MTIMECMP;
    /* Never let the intermediate value be smaller than both old and new. */
    p[1] = 0xffffffffu;
    p[0] = (uint32_t)value;
    p[1] = (uint32_t)(value >> 32);
#else
    *(volatile uint64_t *)CLINT_MTIMECMP = value;
#endif
}

/* ---- PLIC (context 0 = hart 0 M-mode) ------------------------------- */
#define PLIC_BASE        0x0c000000UL
#define PLIC_PRIORITY(irq) (PLIC_BASE + 4u * (irq))
#define PLIC_ENABLE_CTX0   (PLIC_BASE + 0x2000)
#define PLIC_THRESHOLD_CTX0 (PLIC_BASE + 0x200000)
#define PLIC_CLAIM_CTX0    (PLIC_BASE + 0x200004)

#define IRQ_UART0 10

static inline void plic_set_priority(unsigned irq, uint32_t prio)
{
    MMIO32(PLIC_PRIORITY(irq)) = prio;
}

static inline void plic_enable(unsigned irq)
{
    uintptr_t reg = PLIC_ENABLE_CTX0 + 4u * (irq / 32);
    MMIO32(reg) = MMIO32(reg) | (1u << (irq % 32));
}

static inline void plic_set_threshold(uint32_t t)
{
    MMIO32(PLIC_THRESHOLD_CTX0) = t;
}

static inline uint32_t plic_claim(void)
{
    return MMIO32(PLIC_CLAIM_CTX0);
}

static inline void plic_complete(uint32_t irq)
{
    MMIO32(PLIC_CLAIM_CTX0) = irq;
}

#endif
