/*
 * Vector table and reset handler for chronicorn bare-metal Cortex-M3 test
 * guests (QEMU mps2-an385, -kernel guest.elf).
 *
 * At reset the core loads MSP from word 0 of the vector table (VTOR = 0)
 * and jumps to word 1, Reset_Handler, in Thread mode, privileged, on MSP,
 * with PRIMASK clear. Every handler is a weak alias of Default_Handler
 * (both in common/runtime.c: an alias made here, of a symbol defined
 * elsewhere, would be resolved by the assembler) unless a guest defines it.
 */
#define STACK_SIZE 16384

    .syntax unified
    .thumb

    .section .vectors, "a", %progbits
    .balign 4
    .globl __vectors
__vectors:
    .word   __stack_top             /*  0: initial MSP */
    .word   Reset_Handler           /*  1 */
    .word   NMI_Handler             /*  2 */
    .word   HardFault_Handler       /*  3 */
    .word   MemManage_Handler       /*  4 */
    .word   BusFault_Handler        /*  5 */
    .word   UsageFault_Handler      /*  6 */
    .word   0, 0, 0, 0              /*  7-10: reserved */
    .word   SVC_Handler             /* 11 */
    .word   DebugMon_Handler        /* 12 */
    .word   0                       /* 13: reserved */
    .word   PendSV_Handler          /* 14 */
    .word   SysTick_Handler         /* 15 */
    /* External interrupts (IRQn = exception number - 16); QEMU's
     * mps2-an385 has 32. */
    .word   UART0RX_IRQHandler      /* IRQ 0 */
    .word   UART0TX_IRQHandler      /* IRQ 1 */
    .word   UART1RX_IRQHandler      /* IRQ 2 */
    .word   UART1TX_IRQHandler      /* IRQ 3 */
    .word   UART2RX_IRQHandler      /* IRQ 4 */
    .word   UART2TX_IRQHandler      /* IRQ 5 */
    .word   GPIO0_IRQHandler        /* IRQ 6 */
    .word   GPIO1_IRQHandler        /* IRQ 7 */
    .word   TIMER0_IRQHandler       /* IRQ 8 */
    .word   TIMER1_IRQHandler       /* IRQ 9 */
    .word   DUALTIMER_IRQHandler    /* IRQ 10 */
    .word   SPI_IRQHandler          /* IRQ 11 */
    .word   UARTOVF_IRQHandler      /* IRQ 12: UART 0-2 overrun */
    .word   ETHERNET_IRQHandler     /* IRQ 13 */
    .rept   18                      /* IRQ 14-31 */
    .word   Default_Handler
    .endr
    .size __vectors, . - __vectors

    .text
    .balign 2
    .globl  Reset_Handler
    .type   Reset_Handler, %function
    .thumb_func
Reset_Handler:
    /* Zero .bss (start/end are 8-byte aligned by the linker script). The
     * stack is in .bss too: nothing is on it yet. */
    ldr     r0, =__bss_start
    ldr     r1, =__bss_end
    movs    r2, #0
1:  cmp     r0, r1
    bhs     2f
    str     r2, [r0], #4
    b       1b
2:
    /* UART0: BAUDDIV 16, TX on. */
    movs    r0, #0
    bl      uart_init
    bl      main
    /* Exit with main's return value. guest_exit does not return. */
    bl      guest_exit
    .pool
    .size Reset_Handler, . - Reset_Handler

    .section .stack, "aw", %nobits
    .balign 8
    .globl __stack_bottom
__stack_bottom:
    .space  STACK_SIZE
    .globl __stack_top
__stack_top:
