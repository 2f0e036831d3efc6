"""What every architecture's modules share."""

from __future__ import annotations

import ctypes

from unicorn import Uc
from unicorn.unicorn_py3 import unicorn as _ucmod  # private: pinned unicorn==2.1.4 (docs/unicorn-facts.md)


def in_own_context(uc: Uc, context: object | None, action):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN201
    """``action()`` with ``context`` (a context of ``uc``; None: as it is) restored into ``uc``, then ``uc`` put
    back as it was: CPU states are read and built in the machine's own Unicorn (see the state modules)."""
    own = uc.context_save()
    try:
        if context is not None:
            uc.context_restore(context)
        return action()
    finally:
        uc.context_restore(own)


class CpuStateError(ValueError):
    """Register values no CPU of the architecture can hold (a state file's CPU part)."""


class RegisterError(ValueError):
    """A register gdb asked for does not exist or cannot take that value."""


class BatchReader:
    """Many registers in one native call (``uc_reg_read_batch``): the binding's per-register path costs ~2 us
    each, which verification points and state digests pay ~90 times (docs/unicorn-facts.md)."""

    def __init__(self, uc: Uc) -> None:
        self._uc = uc
        self._plans: dict[tuple[int, ...], tuple[object, object, object, int]] = {}

    def read(self, ids: tuple[int, ...]) -> list[int]:
        """The registers ``ids`` as unsigned ints, as ``reg_read`` gives them."""
        plan = self._plans.get(ids)
        if plan is None:
            n = len(ids)
            values = (ctypes.c_uint64 * n)()
            pointers = (ctypes.c_void_p * n)(*(ctypes.addressof(values) + 8 * i for i in range(n)))
            plan = self._plans[ids] = ((ctypes.c_int * n)(*ids), values, pointers, n)
        regs, values, pointers, n = plan
        status = _ucmod.uclib.uc_reg_read_batch(self._uc._uch, regs, pointers, n)
        if status != 0:
            return [int(self._uc.reg_read(r)) for r in ids]  # let the binding raise its own error
        # Each slot is only ever written with its register's width, so bytes above it stay zero.
        return list(values)  # type: ignore[call-overload]
