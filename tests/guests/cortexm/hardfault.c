/*
 * hardfault: two faults that escalate to HardFault (no MemManage, BusFault
 * or UsageFault handler is enabled in SHCSR), reported by a real
 * HardFault_Handler that finds the exception frame on MSP or PSP as
 * EXC_RETURN bit 2 says.
 *
 * 1. Thread mode, privileged, on MSP: sum_table() loads through a pointer
 *    to 0x60000000, unmapped on QEMU's mps2-an385 -> precise BusFault
 *    (CFSR.PRECISERR | BFARVALID, BFAR = 0x60000000) -> HardFault with
 *    HFSR.FORCED. The handler prints CFSR, HFSR, BFAR and the stacked PC
 *    as an offset from sum_table, clears CFSR and HFSR, moves the stacked
 *    PC past the load (a 16- or 32-bit instruction) and returns: the loop
 *    goes on (the skipped load leaves its register as it was).
 * 2. Thread mode on PSP (CONTROL.SPSEL = 1): a call through a pointer to
 *    landing() with bit 0 clear: BLX to an even address clears EPSR.T, and
 *    the first instruction at landing is a UsageFault (CFSR.INVSTATE) ->
 *    HardFault, FORCED. The stacked PC is landing+0, the stacked xPSR has
 *    T = 0. The handler prints it all and exits with status 3 (through
 *    SYS_EXIT_EXTENDED).
 */
#include <stdint.h>
#include "platform.h"
#include "uart.h"

#define BAD_ADDR 0x60000000u   /* nothing mapped there on mps2-an385 */
#define EXIT_AFTER_FAULT 3

static uint32_t word_a = 1, word_b = 20, word_c = 300;
static const volatile uint32_t *table[4] = {
    &word_a, &word_b, (const volatile uint32_t *)BAD_ADDR, &word_c,
};

static uint32_t psp_stack[256] __attribute__((aligned(8)));
static volatile uint32_t phase;

__attribute__((noinline))
uint32_t sum_table(const volatile uint32_t *const *t, uint32_t n)
{
    uint32_t s = 0;
    for (uint32_t i = 0; i < n; i++)
        s += *t[i];
    return s;
}

__attribute__((noinline))
void landing(void)
{
    uart_puts("landing: not reached\n");
}

static const struct { const char *name; void (*fn)(void); } symbols[] = {
    { "sum_table", (void (*)(void))sum_table },
    { "landing", landing },
};

/* PC as SYMBOL+0xOFFSET, from the nearest symbol at or below it. */
static void put_pc(uint32_t pc)
{
    const char *best = 0;
    uint32_t base = 0;
    for (unsigned i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        uint32_t a = (uint32_t)(uintptr_t)symbols[i].fn & ~1u;
        if (a <= pc && (!best || a > base)) {
            best = symbols[i].name;
            base = a;
        }
    }
    if (best) {
        uart_puts(best);
        uart_puts("+0x");
        uart_puthex(pc - base);
    } else {
        uart_puts("0x");
        uart_puthex8(pc);
    }
}

static void put_flag(uint32_t reg, uint32_t bit, const char *name)
{
    if (reg & bit) {
        uart_putc(' ');
        uart_puts(name);
    }
}

/* frame: r0, r1, r2, r3, r12, lr, pc, xpsr of the code that faulted. */
void hardfault_report(uint32_t *frame, uint32_t exc_return)
{
    uint32_t cfsr = MMIO32(SCB_CFSR), hfsr = MMIO32(SCB_HFSR);
    uint32_t pc = frame[6];

    uart_puts("HardFault: exc_return=0x");
    uart_puthex8(exc_return);
    uart_puts(exc_return & 8u ? " (Thread" : " (Handler");
    uart_puts(exc_return & 4u ? ", PSP)\n" : ", MSP)\n");
    uart_puts("cfsr=0x");
    uart_puthex8(cfsr);
    put_flag(cfsr, CFSR_IBUSERR, "IBUSERR");
    put_flag(cfsr, CFSR_PRECISERR, "PRECISERR");
    put_flag(cfsr, CFSR_IMPRECISERR, "IMPRECISERR");
    put_flag(cfsr, CFSR_BFARVALID, "BFARVALID");
    put_flag(cfsr, CFSR_UNDEFINSTR, "UNDEFINSTR");
    put_flag(cfsr, CFSR_INVSTATE, "INVSTATE");
    put_flag(cfsr, CFSR_INVPC, "INVPC");
    put_flag(cfsr, CFSR_UNALIGNED, "UNALIGNED");
    put_flag(cfsr, CFSR_DIVBYZERO, "DIVBYZERO");
    uart_puts("\nhfsr=0x");
    uart_puthex8(hfsr);
    put_flag(hfsr, HFSR_FORCED, "FORCED");
    uart_putc('\n');
    if (cfsr & CFSR_BFARVALID) {
        uart_puts("bfar=0x");
        uart_puthex8(MMIO32(SCB_BFAR));
        uart_putc('\n');
    }
    uart_puts("pc=");
    put_pc(pc);
    uart_puts(" thumb=");
    uart_putdec((frame[7] >> 24) & 1u);
    uart_putc('\n');

    MMIO32(SCB_CFSR) = cfsr;   /* write 1 to clear */
    MMIO32(SCB_HFSR) = hfsr;

    if (phase == 1) {
        /* Skip the load: a 32-bit Thumb instruction starts with 0b11101,
         * 0b11110 or 0b11111. */
        uint16_t hw = *(const uint16_t *)(uintptr_t)pc;
        frame[6] = pc + ((hw >> 11) >= 0x1du ? 4u : 2u);
        return;
    }
    uart_puts("hardfault done\n");
    guest_exit(EXIT_AFTER_FAULT);
}

/* The exception frame is on MSP or PSP, as EXC_RETURN bit 2 says. */
__attribute__((naked))
void HardFault_Handler(void)
{
    __asm__ volatile (
        "tst    lr, #4\n\t"
        "ite    eq\n\t"
        "mrseq  r0, msp\n\t"
        "mrsne  r0, psp\n\t"
        "mov    r1, lr\n\t"
        "push   {r4, lr}\n\t"
        "bl     hardfault_report\n\t"
        "pop    {r4, pc}\n\t");
}

int main(void)
{
    void (*volatile even)(void);

    uart_puts("hardfault start\n");

    phase = 1;
    uart_puts("fault 1: load from 0x60000000 in Thread mode on MSP\n");
    sum_table(table, 4);
    uart_puts("resumed after the load\n");

    phase = 2;
    uart_puts("fault 2: call of landing with bit 0 clear, on PSP\n");
    __asm__ volatile (
        "msr    psp, %0\n\t"
        "msr    control, %1\n\t"   /* SPSEL = 1, still privileged */
        "isb" :: "r"(psp_stack + 256), "r"(2u) : "memory");
    even = (void (*)(void))((uintptr_t)landing & ~1u);
    even();

    uart_puts("not reached\n");
    return 1;
}
