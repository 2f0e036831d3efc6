/* Minimal C runtime for chronicorn Cortex-M3 test guests. */
#include <stddef.h>
#include <stdint.h>
#include "platform.h"
#include "uart.h"

static void semihost_call(uint32_t op, uint32_t arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register uint32_t r1 __asm__("r1") = arg;
    __asm__ volatile ("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
}

void guest_exit(int code)
{
    if (code == 0) {
        semihost_call(SEMIHOST_SYS_EXIT, ADP_STOPPED_APPLICATION_EXIT);
    } else {
        static uint32_t block[2];
        block[0] = ADP_STOPPED_APPLICATION_EXIT;
        block[1] = (uint32_t)code;
        semihost_call(SEMIHOST_SYS_EXIT_EXTENDED, (uint32_t)(uintptr_t)block);
    }
    for (;;)   /* without a semihosting host: sleep with interrupts off */
        __asm__ volatile ("cpsid i\n\twfi" ::: "memory");
}

/* Any exception a guest does not handle: print its number and fail. */
void Default_Handler(void)
{
    uint32_t ipsr;
    __asm__ volatile ("mrs %0, ipsr" : "=r"(ipsr));
    uart_puts("unexpected exception ");
    uart_putdec(ipsr & 0x1ffu);
    uart_putc('\n');
    guest_exit(1);
}

/* The handlers of the vector table (common/start.S) that a guest does not
 * define. */
#define WEAK_HANDLER(name) void name(void) __attribute__((weak, alias("Default_Handler")))
WEAK_HANDLER(NMI_Handler);
WEAK_HANDLER(HardFault_Handler);
WEAK_HANDLER(MemManage_Handler);
WEAK_HANDLER(BusFault_Handler);
WEAK_HANDLER(UsageFault_Handler);
WEAK_HANDLER(SVC_Handler);
WEAK_HANDLER(DebugMon_Handler);
WEAK_HANDLER(PendSV_Handler);
WEAK_HANDLER(SysTick_Handler);
WEAK_HANDLER(UART0RX_IRQHandler);
WEAK_HANDLER(UART0TX_IRQHandler);
WEAK_HANDLER(UART1RX_IRQHandler);
WEAK_HANDLER(UART1TX_IRQHandler);
WEAK_HANDLER(UART2RX_IRQHandler);
WEAK_HANDLER(UART2TX_IRQHandler);
WEAK_HANDLER(GPIO0_IRQHandler);
WEAK_HANDLER(GPIO1_IRQHandler);
WEAK_HANDLER(TIMER0_IRQHandler);
WEAK_HANDLER(TIMER1_IRQHandler);
WEAK_HANDLER(DUALTIMER_IRQHandler);
WEAK_HANDLER(SPI_IRQHandler);
WEAK_HANDLER(UARTOVF_IRQHandler);
WEAK_HANDLER(ETHERNET_IRQHandler);

/*
 * GCC may emit calls to these even with -ffreestanding. Loop-idiom
 * recognition is disabled so the loops below are not turned back into
 * calls to themselves.
 */
#define NO_LIBCALL __attribute__((optimize("no-tree-loop-distribute-patterns")))

NO_LIBCALL
void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

NO_LIBCALL
void *memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

NO_LIBCALL
void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s) {
        while (n--)
            *d++ = *s++;
    } else {
        while (n--)
            d[n] = s[n];
    }
    return dst;
}

NO_LIBCALL
int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *p = a, *q = b;
    for (; n; n--, p++, q++)
        if (*p != *q)
            return *p - *q;
    return 0;
}
