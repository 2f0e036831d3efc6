"""Instruction tracing: one callback per instruction executed, at its exact icount (``--trace``)."""

from __future__ import annotations

from collections.abc import Callable

from unicorn import UC_HOOK_CODE, Uc

from .icount import Counter, read_code


def hook_trace(uc: Uc, counter: Counter, emit: Callable[[int, int, bytes], None]) -> int:
    """Call ``emit(icount, pc, instruction bytes)`` once before each instruction executes; returns the hook."""
    last = (-1, -1)

    def on_code(uc: Uc, addr: int, size: int, _data: object) -> None:
        nonlocal last
        st = counter.state
        icount = st.block_icount + counter.insns_before(addr)
        # Not yet (at or past the limit, or a stop is pending) or already printed
        # (an instruction re-executed after a deferred device access). A trap's
        # first handler instruction shares the faulting one's icount: key on both.
        if (icount, addr) <= last or icount >= st.limit or st.stop_reason:
            return
        last = (icount, addr)
        emit(icount, addr, read_code(uc, addr, size))

    handle = uc.hook_add(UC_HOOK_CODE, on_code)
    uc.ctl_flush_tb()  # hooks are compiled into translations
    return handle
