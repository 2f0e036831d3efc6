/* GICv2 on the QEMU virt board: distributor 0x08000000, CPU interface 0x08010000. */
#ifndef GUEST_GIC_H
#define GUEST_GIC_H

#include <stdint.h>
#include "platform.h"

/* GICD_CTLR = 1, GICC_PMR = 0xff, GICC_CTLR = 1 (group 0 forwarded as IRQ). */
void gic_init(void);
/* Priority (one byte of GICD_IPRIORITYR), for an SPI target CPU 0
 * (GICD_ITARGETSR) and level-sensitive (GICD_ICFGR), then the enable bit
 * in GICD_ISENABLER. */
void gic_enable_irq(unsigned intid, uint8_t priority);
void gic_disable_irq(unsigned intid);   /* GICD_ICENABLER */

/* GICC_IAR: the raw value, to be passed to gic_eoi(); INTID = iar & 0x3ff. */
static inline uint32_t gic_ack(void)
{
    return MMIO32(GICC_BASE + GICC_IAR);
}

static inline void gic_eoi(uint32_t iar)
{
    MMIO32(GICC_BASE + GICC_EOIR) = iar;
}

#endif
