"""RISC-V timer reads answered inside ``emu_start``: the native hooks of ``chron_rv_site_hook`` (native/icount.c).

U-Boot, OpenSBI and Linux poll the clock every few dozen instructions (CLINT ``mtime`` loads in M-mode, ``rdtime``
below it). Each read the board answers in Python costs a stop and a restart of the engine (~60 us); here a C code
hook on the reading instruction (a *site*) computes the same value from the same clock, writes the destination,
retires the instruction and moves pc past it without leaving ``emu_start``.

- A counter-CSR site is every trapped special reading ``time``, ``cycle``, ``instret`` (rv32: their high halves):
  the hook replaces the engine's Python special hook, which it calls for whatever it does not answer (writes,
  privilege and counter-enable failures, landings, breakpoints), so that path is unchanged.
- A load site is an instruction seen loading ``mtime`` once through the device (a deferred MMIO access): from
  then on the hook answers it when it reads ``mtime`` again in M-mode without MPRV; any other access goes to the
  device as before.

Sites are not state: they answer exactly what the Python path would, at the instruction's own icount, so a run
with them, without them (``--no-native``), or stepped one instruction at a time (where they stand aside) sees the
same values (tests/unit/test_timer_sites.py). They stand aside while watchpoints or tracing are on.
"""

from __future__ import annotations

import ctypes

from unicorn import UC_HOOK_CODE, Uc
from unicorn import riscv_const as rc
from unicorn.unicorn_py3 import unicorn as _ucmod  # private: pinned unicorn==2.1.4

from .icount import NativeCounter, _add_raw_hook
from .unicorn_patches import set_riscv_counter_read

U64 = (1 << 64) - 1
MAX_LOAD_SITES = 256  # load sites kept (each is one code hook on one instruction)
SITE_CSR, SITE_MTIME_LOAD = 0, 1


class RvTimerMirror(ctypes.Structure):
    """ctypes mirror of ``struct rv_timer``: the clock and counters as the board has them, and statistics."""

    _fields_ = [
        ("counter", ctypes.c_void_p),
        ("reg_read", ctypes.c_void_p),
        ("reg_write", ctypes.c_void_p),
        ("xlen", ctypes.c_uint64),
        ("x0_reg", ctypes.c_uint64),
        ("pc_reg", ctypes.c_uint64),
        ("priv_reg", ctypes.c_uint64),
        ("mstatus_reg", ctypes.c_uint64),
        ("ram_host", ctypes.c_uint64),
        ("ram_base", ctypes.c_uint64),
        ("ram_size", ctypes.c_uint64),
        ("mcounteren", ctypes.c_uint64),
        ("scounteren", ctypes.c_uint64),
        ("shift", ctypes.c_uint64),
        ("bias_ns", ctypes.c_uint64),
        ("mtime_offset", ctypes.c_uint64),
        ("mcycle_offset", ctypes.c_uint64),
        ("minstret_offset", ctypes.c_uint64),
        ("mtime_addr", ctypes.c_uint64),
        ("disabled", ctypes.c_uint64),
        ("csr_reads", ctypes.c_uint64),
        ("mtime_reads", ctypes.c_uint64),
        ("satp_bare", ctypes.c_uint64),
    ]


class RvSite(ctypes.Structure):
    """ctypes mirror of ``struct rv_site``: one hooked instruction."""

    _fields_ = [
        ("timer", ctypes.c_void_p),
        ("fallback", ctypes.c_void_p),
        ("armed", ctypes.c_uint64),
        ("kind", ctypes.c_uint64),
    ]


class TimerSites:
    """The native timer-read sites of one RISC-V machine (see the module docstring).

    ``ram``: (host address, guest physical address, size) of RAM, where code is read in M-mode and while satp is
    Bare (fetches are physical);
    ``special_fallback`` is the engine's Python special hook as a C function pointer (``HOOK_CODE`` type).
    """

    def __init__(self, uc: Uc, counter: NativeCounter, xlen: int, shift: int, mtime_addr: int,
                 ram: tuple[int, int, int], special_fallback: object) -> None:  # fmt: skip
        self._uc = uc
        self._lib = counter._lib
        self._fallback = ctypes.cast(special_fallback, ctypes.c_void_p)
        m = self.mirror = RvTimerMirror()
        m.counter = ctypes.cast(counter._state_ptr, ctypes.c_void_p)
        m.reg_read = ctypes.cast(_ucmod.uclib.uc_reg_read, ctypes.c_void_p)
        m.reg_write = ctypes.cast(_ucmod.uclib.uc_reg_write, ctypes.c_void_p)
        m.xlen, m.shift, m.mtime_addr = xlen, shift, mtime_addr
        m.x0_reg, m.pc_reg, m.priv_reg = rc.UC_RISCV_REG_X0, rc.UC_RISCV_REG_PC, rc.UC_RISCV_REG_PRIV
        m.mstatus_reg = rc.UC_RISCV_REG_MSTATUS
        m.ram_host, m.ram_base, m.ram_size = ram
        self._mirror_ptr = ctypes.cast(ctypes.pointer(m), ctypes.c_void_p)
        self._sites: dict[int, list[RvSite]] = {}  # kept alive as long as their hooks
        self._loads: set[int] = set()
        self._pending_loads: list[int] = []
        self._breakpoints: set[int] = set()

    def _add(self, addr: int, kind: int) -> int:
        site = RvSite(self._mirror_ptr.value, self._fallback.value if kind == SITE_CSR else None,
                      int(addr not in self._breakpoints), kind)  # fmt: skip
        handle = _add_raw_hook(self._uc, UC_HOOK_CODE, self._lib.chron_rv_site_hook,
                               ctypes.cast(ctypes.pointer(site), ctypes.c_void_p), addr, addr)  # fmt: skip
        self._sites.setdefault(addr, []).append(site)
        return handle

    def serve_counter_reads(self) -> bool:
        """Have Unicorn ask the native helper for every counter CSR read as it executes it, instead of sites
        trapping them (needs Unicorn's riscv-counter-read patch: False without it)."""
        fn = ctypes.cast(self._lib.chron_rv_counter_csr, ctypes.c_void_p)
        return set_riscv_counter_read(self._uc, fn, self._mirror_ptr)

    def add_special(self, addr: int) -> int:
        """Hook the trapped special at ``addr`` (the engine's special hook when it is not a counter read)."""
        return self._add(addr, SITE_CSR)

    def note_mtime_load(self, pc: int) -> None:
        """The instruction at ``pc`` loaded mtime through the device: hook it before the next run."""
        known = pc in self._loads or pc in self._pending_loads
        if not known and len(self._loads) + len(self._pending_loads) < MAX_LOAD_SITES:
            self._pending_loads.append(pc)

    def set_breakpoint(self, addr: int, present: bool) -> None:
        """A breakpoint was added at or removed from ``addr``: a site there stands aside while it is."""
        if present:
            self._breakpoints.add(addr)
        else:
            self._breakpoints.discard(addr)
        for site in self._sites.get(addr, ()):
            site.armed = int(not present)

    def prepare(self, bias_ns: int, mtime_offset: int, mcycle_offset: int, minstret_offset: int,
                run_csrs: tuple[int, int, int], disabled: bool) -> None:  # fmt: skip
        """Before a run: the clock, counters, counter enables and satp (``run_csrs``: mcounteren, scounteren,
        satp) as the board has them (a guest write to any of the three is trapped: a run ends after it); hook the
        loads noted since the last run."""
        m = self.mirror
        m.mcounteren, m.scounteren, satp = run_csrs
        m.satp_bare = int(satp >> (31 if m.xlen == 32 else 60) == 0)  # MODE Bare: fetches below M are physical
        m.bias_ns, m.mtime_offset = bias_ns & U64, mtime_offset & U64
        m.mcycle_offset, m.minstret_offset = mcycle_offset & U64, minstret_offset & U64
        m.disabled = int(disabled)
        while self._pending_loads:
            pc = self._pending_loads.pop()
            self._loads.add(pc)
            self._add(pc, SITE_MTIME_LOAD)
            self._uc.ctl_remove_cache(pc, pc + 1)  # the translation holding pc must see the new hook

    @property
    def reads(self) -> tuple[int, int]:
        """(counter-CSR reads, mtime loads) answered natively so far."""
        return int(self.mirror.csr_reads), int(self.mirror.mtime_reads)
