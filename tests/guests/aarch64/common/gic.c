#include "gic.h"

#define GICD(off) MMIO32(GICD_BASE + (off))
#define GICC(off) MMIO32(GICC_BASE + (off))

void gic_init(void)
{
    GICD(GICD_CTLR) = 1;
    GICC(GICC_PMR) = 0xff;
    GICC(GICC_CTLR) = 1;
}

/* Byte-field registers are changed with 32-bit read-modify-writes. */
static void set_byte(uintptr_t reg_base, unsigned intid, uint8_t v)
{
    uintptr_t reg = reg_base + (intid & ~3u);
    unsigned shift = 8u * (intid & 3u);
    MMIO32(reg) = (MMIO32(reg) & ~(0xffu << shift)) | ((uint32_t)v << shift);
}

void gic_enable_irq(unsigned intid, uint8_t priority)
{
    set_byte(GICD_BASE + GICD_IPRIORITYR, intid, priority);
    if (intid >= 32) {
        uintptr_t cfg = GICD_BASE + GICD_ICFGR + 4u * (intid / 16);
        set_byte(GICD_BASE + GICD_ITARGETSR, intid, 0x01);       /* CPU 0 */
        MMIO32(cfg) = MMIO32(cfg) & ~(2u << (2u * (intid % 16))); /* level */
    }
    GICD(GICD_ISENABLER + 4u * (intid / 32)) = 1u << (intid % 32);
}

void gic_disable_irq(unsigned intid)
{
    GICD(GICD_ICENABLER + 4u * (intid / 32)) = 1u << (intid % 32);
}
