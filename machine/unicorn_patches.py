"""Which of chronicorn's patches to Unicorn (``third_party/unicorn``) the loaded ``libunicorn`` carries.

``scripts/build_unicorn.py`` builds Unicorn 2.1.4 from its source release with them and installs it in place of
the wheel's library. Without them everything works the same, slower: the patches change how fast Unicorn runs,
never what it computes (the tests compare both paths).
"""

from __future__ import annotations

import ctypes
import functools

import unicorn.unicorn_py3.unicorn as _ucmod
from unicorn import Uc

FAST_STORES = "fast-stores"  # stores to RAM pages holding no translated code take the inline fast path
DIRECT_CODE_HOOKS = "direct-code-hooks"  # the one code hook on an instruction is called directly
RISCV_COUNTER_READ = "riscv-counter-read"  # RISC-V time/cycle/instret reads answered by a function of ours


@functools.cache
def engine_patches() -> frozenset[str]:
    """The patches of the loaded Unicorn library (empty for a stock build)."""
    fn = getattr(_ucmod.uclib, "uc_chronicorn_patches", None)
    if fn is None:
        return frozenset()
    fn.restype = ctypes.c_char_p
    fn.argtypes = []
    return frozenset(name for name in fn().decode("ascii").split(",") if name)


def set_riscv_counter_read(uc: Uc, fn: ctypes.c_void_p, opaque: ctypes.c_void_p) -> bool:
    """Answer the RISC-V counter reads of ``uc`` with C function ``fn(opaque, csrno, pc, priv, *value)``
    (see ``chron_rv_counter_csr``); False when the library cannot."""
    if RISCV_COUNTER_READ not in engine_patches():
        return False
    setter = _ucmod.uclib.uc_chronicorn_set_counter_read
    setter.restype = ctypes.c_int
    setter.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    return setter(uc._uch, fn, opaque) == 0
