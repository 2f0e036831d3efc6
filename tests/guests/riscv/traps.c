/*
 * traps: synchronous exceptions with a handler installed.
 * In order: ecall, a 32-bit illegal instruction (unimp = csrrw x0, cycle, x0),
 * a 16-bit illegal instruction (c.unimp = 0x0000), a 32-bit ebreak and a
 * 32-bit load from unmapped 0x90000000. The handler records mcause, mepc
 * and mtval, then skips the instruction (2 or 4 bytes, from the low two
 * bits of the instruction at mepc).
 */
#include <stdint.h>
#include "riscv.h"
#include "platform.h"
#include "uart.h"

#define UNMAPPED_ADDR 0x90000000UL

struct trap_record {
    unsigned long mcause;
    unsigned long mepc;
    unsigned long mtval;
    uint32_t insn;
};

#define MAX_TRAPS 8
static volatile struct trap_record trap_log[MAX_TRAPS];
static volatile unsigned ntraps;

unsigned long trap_handler(unsigned long mcause, unsigned long mepc,
                           unsigned long mtval)
{
    if (mcause & MCAUSE_INTERRUPT) {
        uart_puts("traps: unexpected interrupt\n");
        guest_exit(1);
    }
    /* mepc may be only 2-byte aligned: read the instruction in halves. */
    const volatile uint16_t *p = (const volatile uint16_t *)mepc;
    uint32_t insn = p[0];
    unsigned len = 2;
    if ((insn & 3) == 3) {
        insn |= (uint32_t)p[1] << 16;
        len = 4;
    }
    unsigned n = ntraps;
    if (n < MAX_TRAPS) {
        trap_log[n].mcause = mcause;
        trap_log[n].mepc = mepc;
        trap_log[n].mtval = mtval;
        trap_log[n].insn = insn;
        ntraps = n + 1;
    }
    return mepc + len;
}

/* Each macro yields the address of the trapping instruction. */
#define TRAP_AT(insn_text) ({                                   \
    unsigned long __pc;                                         \
    __asm__ volatile (".option push\n\t"                        \
                      ".option norvc\n\t"                       \
                      "lla %0, 1f\n"                            \
                      "1:\t" insn_text "\n\t"                   \
                      ".option pop"                             \
                      : "=&r"(__pc) : : "memory");              \
    __pc; })

static unsigned long trap_load(void)
{
    unsigned long pc, val = 0;
    __asm__ volatile (".option push\n\t"
                      ".option norvc\n\t"
                      "lla %0, 1f\n"
                      "1:\tlw %1, 0(%2)\n\t"
                      ".option pop"
                      : "=&r"(pc), "+&r"(val)
                      : "r"(UNMAPPED_ADDR)
                      : "memory");
    return pc;
}

static void report(unsigned idx, unsigned long expected_pc)
{
    if (idx >= ntraps) {
        uart_puts("trap missing\n");
        return;
    }
    uart_puts("trap mcause=");
    uart_putdec(trap_log[idx].mcause);
    uart_puts(" mepc_ok=");
    uart_putdec(trap_log[idx].mepc == expected_pc);
    uart_putc('\n');
    if (trap_log[idx].mcause == CAUSE_LOAD_ACCESS) {
        uart_puts("mtval=0x");
        uart_puthex(trap_log[idx].mtval);
        uart_putc('\n');
    }
}

int main(unsigned long hartid, void *fdt)
{
    unsigned long pc[5];

    (void)hartid;
    (void)fdt;

    install_trap_handler();

    pc[0] = TRAP_AT("ecall");
    pc[1] = TRAP_AT(".4byte 0xc0001073");   /* unimp: csrrw x0, cycle, x0 */
    pc[2] = TRAP_AT(".2byte 0x0000");       /* c.unimp */
    pc[3] = TRAP_AT("ebreak");              /* 4-byte form (norvc) */
    pc[4] = trap_load();

    for (unsigned i = 0; i < 5; i++)
        report(i, pc[i]);
    if (ntraps != 5) {
        uart_puts("unexpected trap count\n");
        return 2;
    }
    uart_puts("traps done\n");
    return 0;
}
