/* QEMU `mps2-an385` (Cortex-M3) devices used by the chronicorn test guests. */
#ifndef GUEST_PLATFORM_H
#define GUEST_PLATFORM_H

#include <stdint.h>

#define MMIO32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* ---- clocks --------------------------------------------------------- */
#define SYSCLK_HZ 25000000u   /* the CPU clock and the APB peripherals' PCLK */

/* ---- CMSDK APB timer 0 (IRQ 8; timer 1 at 0x40001000 is IRQ 9) ------ */
#define TIMER0_BASE      0x40000000u
#define TIMER_CTRL       0x00u   /* bit0 enable, bit1 EXTIN as enable, bit2 EXTIN as clock, bit3 IRQ enable */
#define TIMER_VALUE      0x04u
#define TIMER_RELOAD     0x08u
#define TIMER_INTSTATUS  0x0Cu   /* write 1 to clear (INTCLEAR) */
#define TIMER_CTRL_EN    (1u << 0)
#define TIMER_CTRL_IRQEN (1u << 3)

/* ---- interrupt numbers (NVIC IRQn, exception number = 16 + IRQn) ---- */
#define IRQ_UART0_RX     0
#define IRQ_UART0_TX     1
#define IRQ_TIMER0       8
#define IRQ_TIMER1       9
#define IRQ_DUALTIMER    10
#define IRQ_UART_OVF     12   /* UART0-2 overrun, ORed together */

/* ---- exception numbers (IPSR) --------------------------------------- */
#define EXC_NMI          2
#define EXC_HARDFAULT    3
#define EXC_MEMMANAGE    4
#define EXC_BUSFAULT     5
#define EXC_USAGEFAULT   6
#define EXC_SVCALL       11
#define EXC_DEBUGMON     12
#define EXC_PENDSV       14
#define EXC_SYSTICK      15

/* ---- SCB ------------------------------------------------------------ */
#define SCB_CPUID        0xE000ED00u
#define SCB_ICSR         0xE000ED04u
#define SCB_VTOR         0xE000ED08u
#define SCB_AIRCR        0xE000ED0Cu
#define SCB_SCR          0xE000ED10u
#define SCB_CCR          0xE000ED14u
#define SCB_SHPR1        0xE000ED18u   /* MemManage, BusFault, UsageFault */
#define SCB_SHPR2        0xE000ED1Cu   /* SVCall in bits 31:24 */
#define SCB_SHPR3        0xE000ED20u   /* PendSV 23:16, SysTick 31:24 */
#define SCB_SHCSR        0xE000ED24u
#define SCB_CFSR         0xE000ED28u
#define SCB_HFSR         0xE000ED2Cu
#define SCB_MMFAR        0xE000ED34u
#define SCB_BFAR         0xE000ED38u

#define ICSR_PENDSVSET   (1u << 28)
#define ICSR_PENDSVCLR   (1u << 27)
#define ICSR_PENDSTCLR   (1u << 25)

#define CFSR_IACCVIOL    (1u << 0)     /* MemManage (bits 7:0) */
#define CFSR_MMARVALID   (1u << 7)
#define CFSR_IBUSERR     (1u << 8)     /* BusFault (bits 15:8) */
#define CFSR_PRECISERR   (1u << 9)
#define CFSR_IMPRECISERR (1u << 10)
#define CFSR_BFARVALID   (1u << 15)
#define CFSR_UNDEFINSTR  (1u << 16)    /* UsageFault (bits 31:16) */
#define CFSR_INVSTATE    (1u << 17)
#define CFSR_INVPC       (1u << 18)
#define CFSR_NOCP        (1u << 19)
#define CFSR_UNALIGNED   (1u << 24)
#define CFSR_DIVBYZERO   (1u << 25)
#define HFSR_VECTTBL     (1u << 1)
#define HFSR_FORCED      (1u << 30)

/* ---- SysTick -------------------------------------------------------- */
#define SYST_CSR         0xE000E010u
#define SYST_RVR         0xE000E014u
#define SYST_CVR         0xE000E018u
#define SYST_CALIB       0xE000E01Cu
#define SYST_CSR_ENABLE    (1u << 0)
#define SYST_CSR_TICKINT   (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2)   /* 1: processor clock, 0: reference clock */
#define SYST_CSR_COUNTFLAG (1u << 16)

/* ---- NVIC ----------------------------------------------------------- */
#define NVIC_ISER0       0xE000E100u
#define NVIC_ICER0       0xE000E180u
#define NVIC_ISPR0       0xE000E200u
#define NVIC_ICPR0       0xE000E280u
#define NVIC_IPR0        0xE000E400u   /* one byte per IRQ */

static inline void nvic_enable(unsigned irq)
{
    MMIO32(NVIC_ISER0 + 4u * (irq / 32)) = 1u << (irq % 32);
}

static inline void nvic_disable(unsigned irq)
{
    MMIO32(NVIC_ICER0 + 4u * (irq / 32)) = 1u << (irq % 32);
    __asm__ volatile ("dsb\n\tisb" ::: "memory");
}

static inline void nvic_clear_pending(unsigned irq)
{
    MMIO32(NVIC_ICPR0 + 4u * (irq / 32)) = 1u << (irq % 32);
}

static inline void nvic_set_priority(unsigned irq, uint8_t prio)
{
    *(volatile uint8_t *)(uintptr_t)(NVIC_IPR0 + irq) = prio;
}

/* ---- CPU ------------------------------------------------------------ */
static inline void wfi(void) { __asm__ volatile ("wfi" ::: "memory"); }
static inline void irq_disable(void) { __asm__ volatile ("cpsid i" ::: "memory"); }
static inline void irq_enable(void) { __asm__ volatile ("cpsie i" ::: "memory"); }

static inline uint32_t read_control(void)
{
    uint32_t v;
    __asm__ volatile ("mrs %0, control" : "=r"(v));
    return v;
}

/* ---- semihosting exit (common/runtime.c) ---------------------------- */
#define SEMIHOST_SYS_EXIT          0x18u
#define SEMIHOST_SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

/*
 * Stop the machine through semihosting: 0 -> SYS_EXIT with
 * ADP_Stopped_ApplicationExit (QEMU exits with status 0); anything else ->
 * SYS_EXIT_EXTENDED with {ADP_Stopped_ApplicationExit, code} (QEMU exits
 * with status code). Must run privileged (QEMU ignores semihosting in
 * unprivileged Thread mode).
 */
void guest_exit(int code) __attribute__((noreturn));

/* Default exception handler: prints the exception number and exits 1. */
void Default_Handler(void);

#endif
