/* Arm generic timer: the EL1 virtual timer (PPI 27) through system registers. */
#ifndef GUEST_TIMER_H
#define GUEST_TIMER_H

#include <stdint.h>
#include "arm.h"

#define CNT_CTL_ENABLE  (1u << 0)
#define CNT_CTL_IMASK   (1u << 1)
#define CNT_CTL_ISTATUS (1u << 2)

static inline uint64_t timer_freq(void)
{
    return read_sysreg(cntfrq_el0);
}

static inline uint64_t timer_vcount(void)
{
    isb();
    return read_sysreg(cntvct_el0);
}

/* Fire `ticks` counter ticks from now (CNTV_TVAL_EL0, a signed 32-bit value). */
static inline void vtimer_arm(uint32_t ticks)
{
    write_sysreg(cntv_tval_el0, ticks);
    write_sysreg(cntv_ctl_el0, CNT_CTL_ENABLE);
    isb();
}

static inline void vtimer_stop(void)
{
    write_sysreg(cntv_ctl_el0, 0);
    isb();
}

#endif
