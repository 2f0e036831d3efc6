/* QEMU `virt` (AArch64) devices used by the chronicorn test guests. */
#ifndef GUEST_PLATFORM_H
#define GUEST_PLATFORM_H

#include <stdint.h>

#define MMIO32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* ---- PL011 UART ------------------------------------------------------- */
#define UART0_BASE   0x09000000UL
#define UART_DR      0x000
#define UART_FR      0x018
#define UART_LCR_H   0x02C
#define UART_CR      0x030
#define UART_IMSC    0x038
#define UART_MIS     0x040
#define UART_ICR     0x044

#define UART_FR_RXFE (1u << 4)
#define UART_FR_TXFF (1u << 5)
#define UART_INT_RX  (1u << 4)          /* RXIM / RXMIS / RXIC */
#define UART_INT_RT  (1u << 6)          /* receive timeout (not raised by QEMU 7.2) */
#define UART_CR_UARTEN (1u << 0)
#define UART_CR_TXE  (1u << 8)
#define UART_CR_RXE  (1u << 9)

/* ---- PL031 RTC -------------------------------------------------------- */
#define RTC_BASE     0x09010000UL
#define RTC_DR       0x000

/* ---- GICv2 ------------------------------------------------------------ */
#define GICD_BASE    0x08000000UL
#define GICC_BASE    0x08010000UL

#define GICD_CTLR        0x000
#define GICD_ISENABLER   0x100         /* + 4 * (intid / 32) */
#define GICD_ICENABLER   0x180
#define GICD_IPRIORITYR  0x400         /* + intid, one byte each */
#define GICD_ITARGETSR   0x800         /* + intid, one byte each */
#define GICD_ICFGR       0xC00         /* + 4 * (intid / 16), two bits each */

#define GICC_CTLR    0x000
#define GICC_PMR     0x004
#define GICC_IAR     0x00C
#define GICC_EOIR    0x010

#define GIC_SPURIOUS 1023u

/* Interrupt IDs on `virt`. */
#define INTID_VTIMER 27                 /* PPI 11: EL1 virtual timer */
#define INTID_PTIMER 30                 /* PPI 14: EL1 physical timer (non-secure) */
#define INTID_UART0  33                 /* SPI 1 */
#define INTID_RTC    34                 /* SPI 2 */

/* ---- PSCI (conduit: hvc #0) ------------------------------------------- */
#define PSCI_VERSION       0x84000000u
#define PSCI_SYSTEM_OFF    0x84000008u
#define PSCI_SYSTEM_RESET  0x84000009u

#endif
