/*
 * fault: synchronous exceptions taken at EL1 and returned from.
 *
 * 1. A 32-bit load from 0x0a100000 (labelled fault_load), an address the
 *    virt board leaves unmapped (between the virtio-mmio transports, which
 *    end at 0x0a004000, and the platform bus at 0x0c000000). QEMU answers
 *    with a synchronous external abort: a data abort from the current EL
 *    (EC 0x25), DFSC 0x10, FAR = the address.
 * 2. The same for a 32-bit store (fault_store): WnR = 1.
 * 3. `svc #0x42` (svc_insn): EC 0x15, ISS = the immediate.
 *
 * The handler prints the architectural fields only (EC, IL, WnR, DFSC; not
 * the whole ESR: ISV/EA and the rest of the ISS are implementation
 * defined), FAR_EL1 and ELR_EL1 relative to the label of the instruction.
 * For the aborts it steps ELR over the instruction; for svc, ELR is already
 * the next instruction and is left unchanged. Then "fault done" and
 * SYSTEM_OFF.
 */
#include <stdint.h>
#include "arm.h"
#include "exc.h"
#include "runtime.h"
#include "uart.h"

#define UNMAPPED_ADDR 0x0a100000UL

extern const char fault_load[], fault_store[], svc_insn[];

static void print_elr(uint64_t elr, const char *label, const char *sym)
{
    uart_puts(" ELR=");
    uart_puts(label);
    if (elr >= (uint64_t)(uintptr_t)sym) {
        uart_putc('+');
        print_dec(elr - (uint64_t)(uintptr_t)sym);
    } else {
        uart_putc('-');
        print_dec((uint64_t)(uintptr_t)sym - elr);
    }
    uart_putc('\n');
}

static unsigned aborts;

void sync_handler(struct exc_frame *f)
{
    uint64_t esr = read_sysreg(esr_el1);
    uint64_t ec = ESR_EC(esr);

    if (ec == EC_DABT_CUR) {
        uint64_t far = read_sysreg(far_el1);
        uart_puts("data abort: EC=0x");
        print_hex(ec);
        uart_puts(" IL=");
        print_dec(ESR_IL(esr));
        uart_puts(" WnR=");
        print_dec(ESR_WNR(esr));
        uart_puts(" DFSC=0x");
        print_hex(ESR_DFSC(esr));
        uart_puts(" FAR=0x");
        print_hex(far);
        if (aborts == 0)
            print_elr(f->elr, "fault_load", fault_load);
        else
            print_elr(f->elr, "fault_store", fault_store);
        aborts++;
        f->elr += 4;                    /* skip the load/store */
        return;
    }
    if (ec == EC_SVC64) {
        uart_puts("svc: EC=0x");
        print_hex(ec);
        uart_puts(" IL=");
        print_dec(ESR_IL(esr));
        uart_puts(" imm=0x");
        print_hex(ESR_ISS(esr) & 0xffff);
        print_elr(f->elr, "svc_insn", svc_insn);
        return;                         /* ELR is already past the svc */
    }
    unexpected_exception(f, VEC_SYNC_SPX);
}

int main(void)
{
    uint32_t v = 0;

    uart_puts("about to fault\n");
    __asm__ volatile (".globl fault_load\n"
                      "fault_load:\n\t"
                      "ldr %w0, [%1]"
                      : "+r"(v) : "r"(UNMAPPED_ADDR) : "memory");
    uart_puts("after the load\n");
    __asm__ volatile (".globl fault_store\n"
                      "fault_store:\n\t"
                      "str %w0, [%1]"
                      : : "r"(v), "r"(UNMAPPED_ADDR + 4) : "memory");
    uart_puts("after the store\n");
    __asm__ volatile (".globl svc_insn\n"
                      "svc_insn:\n\t"
                      "svc #0x42"
                      : : : "memory");
    uart_puts("after the svc\n");
    uart_puts("fault done: ");
    print_dec(aborts);
    uart_puts(" aborts\n");
    return 0;
}
