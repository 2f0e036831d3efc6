"""The virtual clock, as in QEMU's icount mode: time = (icount << shift) + bias.

``bias_ns`` only grows while the guest idles (QEMU's warp), so the clock is a
pure function of the icount and the idle warps the input source decided.
"""

from __future__ import annotations

from dataclasses import dataclass

from .devices.clint import NS_PER_TICK

MAX_BIAS_NS = (1 << 64) - 1  # what a state holds (BoardState.bias_ns): ~584 years of idling


@dataclass(slots=True)
class VirtualClock:
    """Virtual nanoseconds and 10 MHz timer ticks at a given icount."""

    shift: int = 3
    bias_ns: int = 0

    def ns(self, icount: int) -> int:
        return (icount << self.shift) + self.bias_ns

    def ticks(self, icount: int) -> int:
        return self.ns(icount) // NS_PER_TICK

    def icount_at_ticks(self, ticks: int, now_icount: int) -> int:
        """First icount >= now at which the clock reads at least ``ticks``."""
        return self.icount_at_ns(ticks * NS_PER_TICK, now_icount)

    def icount_at_ns(self, ns: int, now_icount: int) -> int:
        """First icount >= now at which the clock reads at least ``ns``."""
        need = ns - self.bias_ns
        if need <= 0:
            return now_icount
        return max(now_icount, -(-need >> self.shift))
