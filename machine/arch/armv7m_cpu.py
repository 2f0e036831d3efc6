"""An Armv7-M CPU as a state file holds it: register values through Unicorn's public register API.

The stack pointers are saved as their banks (MSP, PSP): which one is the current SP follows from CONTROL.SPSEL
and the mode (IPSR). Writing them back goes CONTROL first (a thread-mode write, so Unicorn swaps the banks as the
core would), then xPSR (the mode), then the banks. Not saved: the exclusive monitor (a later store-exclusive
fails, as the architecture allows) and the NVIC, which is a device (``ScsState``).
"""

from __future__ import annotations

from unicorn import Uc
from unicorn import arm_const as ac
from unicorn.unicorn_py3.unicorn import UcContext

from .common import CpuStateError, in_own_context

CPU_STATE_VERSION = 1
XPSR_T = 1 << 24
# (name, Unicorn id) in file and write order.
CPU_REGISTERS = (
    ("control", ac.UC_ARM_REG_CONTROL), ("xpsr", ac.UC_ARM_REG_XPSR), ("msp", ac.UC_ARM_REG_MSP),
    ("psp", ac.UC_ARM_REG_PSP), ("primask", ac.UC_ARM_REG_PRIMASK), ("basepri", ac.UC_ARM_REG_BASEPRI),
    ("faultmask", ac.UC_ARM_REG_FAULTMASK),
    *((f"r{i}", ac.UC_ARM_REG_R0 + i) for i in range(13)),
    ("lr", ac.UC_ARM_REG_LR), ("pc", ac.UC_ARM_REG_PC),
)  # fmt: skip
_LIMITS = {"control": 3, "primask": 1, "faultmask": 1, "basepri": 0xFF}
MAX_EXCEPTION = 16 + 32 - 1  # IPSR: the AN385's NVIC has 32 external interrupts




class MProfileRegisters:
    """The special registers of a Unicorn Cortex-M, read and written as a debugger sees them, in any mode.

    Unicorn reads and writes MSP, PSP, PRIMASK, BASEPRI, FAULTMASK and CONTROL as the guest's MRS/MSR would:
    unprivileged Thread mode reads them as 0 and ignores writes, and Handler mode ignores CONTROL.SPSEL. An xPSR
    write that changes the mode moves r13 to the stack pointer of the new mode (measured). So these accesses
    happen in Handler mode (an xPSR write, undone after), where all of them are allowed.
    """

    def __init__(self, uc: Uc) -> None:
        self._uc = uc

    def _read(self, uc_reg: int) -> int:
        return int(self._uc.reg_read(uc_reg)) & 0xFFFF_FFFF

    def _in_handler(self, action):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
        xpsr = self._read(ac.UC_ARM_REG_XPSR)
        if xpsr & 0x1FF:
            return action()
        self._uc.reg_write(ac.UC_ARM_REG_XPSR, xpsr | 3)  # HardFault's number: Handler mode, privileged
        try:
            return action()
        finally:
            self._uc.reg_write(ac.UC_ARM_REG_XPSR, xpsr)

    def banks(self) -> tuple[int, int]:
        """(MSP, PSP)."""
        return self._in_handler(lambda: (self._read(ac.UC_ARM_REG_MSP), self._read(ac.UC_ARM_REG_PSP)))  # type: ignore[no-any-return]

    def set_banks(self, msp: int, psp: int) -> None:
        def write() -> None:
            self._uc.reg_write(ac.UC_ARM_REG_MSP, msp)
            self._uc.reg_write(ac.UC_ARM_REG_PSP, psp)

        self._in_handler(write)

    def masks(self) -> tuple[int, int, int]:
        """(PRIMASK, BASEPRI, FAULTMASK)."""
        return self._in_handler(lambda: tuple(self._read(r) for r in _MASKS))  # type: ignore[no-any-return]

    def set_masks(self, values: tuple[int, int, int]) -> None:
        def write() -> None:
            for uc_reg, value in zip(_MASKS, values, strict=True):
                self._uc.reg_write(uc_reg, value)

        self._in_handler(write)

    def set_control(self, value: int) -> None:
        """CONTROL as a debugger (or the board's exception entry and return) sets it, in any mode.

        Unicorn ignores CONTROL writes in unprivileged Thread mode and CONTROL.SPSEL writes in Handler mode, so:
        Handler mode to clear nPRIV, a privileged Thread mode to write SPSEL (Unicorn then swaps the stack
        pointer banks as the core does) and nPRIV, then the mode the CPU was in.
        """
        uc = self._uc
        xpsr = self._read(ac.UC_ARM_REG_XPSR)
        uc.reg_write(ac.UC_ARM_REG_XPSR, (xpsr & ~0x1FF) | XPSR_T | 3)  # Handler mode: privileged
        uc.reg_write(ac.UC_ARM_REG_CONTROL, 0)
        uc.reg_write(ac.UC_ARM_REG_XPSR, (xpsr & ~0x1FF) | XPSR_T)  # privileged Thread mode
        uc.reg_write(ac.UC_ARM_REG_CONTROL, value & 2)
        uc.reg_write(ac.UC_ARM_REG_CONTROL, value & 3)
        uc.reg_write(ac.UC_ARM_REG_XPSR, xpsr)

    def read(self, name: str) -> int:
        """One register of :data:`CPU_REGISTERS` by name."""
        if name in ("msp", "psp"):
            return self.banks()[name == "psp"]
        if name in _MASK_NAMES:
            return self.masks()[_MASK_NAMES.index(name)]
        return self._read(dict(CPU_REGISTERS)[name]) & (~1 if name == "pc" else 0xFFFF_FFFF)

    def write(self, name: str, value: int) -> None:
        if name in ("msp", "psp"):
            msp, psp = self.banks()
            self.set_banks(value if name == "msp" else msp, value if name == "psp" else psp)
        elif name in _MASK_NAMES:
            masks = list(self.masks())
            masks[_MASK_NAMES.index(name)] = value
            self.set_masks(tuple(masks))  # type: ignore[arg-type]
        elif name == "control":
            self.set_control(value)
        else:
            self._uc.reg_write(dict(CPU_REGISTERS)[name], value | 1 if name == "pc" else value)


_MASK_NAMES = ("primask", "basepri", "faultmask")
_MASKS = (ac.UC_ARM_REG_PRIMASK, ac.UC_ARM_REG_BASEPRI, ac.UC_ARM_REG_FAULTMASK)


def read_uc(uc: Uc) -> tuple[int, ...]:
    """The values of :data:`CPU_REGISTERS` a live Unicorn CPU holds (pc without the Thumb bit)."""
    regs = MProfileRegisters(uc)
    msp, psp = regs.banks()
    primask, basepri, faultmask = regs.masks()
    special = {"msp": msp, "psp": psp, "primask": primask, "basepri": basepri, "faultmask": faultmask}
    return tuple(special[n] if n in special else int(uc.reg_read(r)) & 0xFFFF_FFFF for n, r in CPU_REGISTERS)


def read_cpu(context: UcContext, uc: Uc | None = None) -> tuple[int, ...]:
    """The values of :data:`CPU_REGISTERS` held by ``context``, a context of ``uc`` (read in it, then put back).

    Unicorn's Arm contexts hold pointers of the CPU they were saved from: restored into another Unicorn
    instance, both free them when destroyed (a double free, measured). So contexts never leave their Unicorn.
    """
    if uc is None:
        raise ValueError("armv7m contexts are read in the Unicorn they belong to")
    return in_own_context(uc, context, lambda: read_uc(uc))  # type: ignore[no-any-return]


def build_context(values: tuple[int, ...] | list[int], uc: Uc | None = None) -> UcContext:
    """A context of ``uc`` holding exactly ``values`` (in :data:`CPU_REGISTERS` order), or CpuStateError;
    ``uc`` itself is left as it was."""
    if uc is None:
        raise ValueError("armv7m contexts are built in the Unicorn they belong to")
    if len(values) != len(CPU_REGISTERS):
        raise CpuStateError(f"{len(values)} CPU registers, armv7m has {len(CPU_REGISTERS)}")
    for (name, _), value in zip(CPU_REGISTERS, values, strict=True):
        if type(value) is not int or not 0 <= value <= _LIMITS.get(name, 0xFFFF_FFFF):
            raise CpuStateError(f"register {name}: {value!r} is out of range")
    xpsr = values[1]
    if xpsr & 0x1FF > MAX_EXCEPTION:
        raise CpuStateError(f"xpsr {xpsr:#x}: no such exception number")
    return in_own_context(uc, None, lambda: _build(uc, values))  # type: ignore[no-any-return]


def _build(uc: Uc, values: tuple[int, ...] | list[int]) -> UcContext:
    by_name = dict(zip((n for n, _ in CPU_REGISTERS), values, strict=True))
    uc.reg_write(ac.UC_ARM_REG_XPSR, XPSR_T | 3)  # Handler mode: privileged, whatever CONTROL holds now
    uc.reg_write(ac.UC_ARM_REG_CONTROL, 0)  # nPRIV clear (SPSEL is ignored in Handler mode)
    uc.reg_write(ac.UC_ARM_REG_XPSR, XPSR_T)  # Thread mode, privileged
    uc.reg_write(ac.UC_ARM_REG_CONTROL, by_name["control"] & 2)  # SPSEL, then nPRIV
    uc.reg_write(ac.UC_ARM_REG_CONTROL, by_name["control"])
    uc.reg_write(ac.UC_ARM_REG_XPSR, by_name["xpsr"])
    regs = MProfileRegisters(uc)
    regs.set_masks((by_name["primask"], by_name["basepri"], by_name["faultmask"]))
    regs.set_banks(by_name["msp"], by_name["psp"])
    for name, uc_reg in CPU_REGISTERS[7:]:
        uc.reg_write(uc_reg, by_name[name] | 1 if name == "pc" else by_name[name])
    context = uc.context_save()
    for (name, _), wanted, got in zip(CPU_REGISTERS, values, read_uc(uc), strict=True):
        if wanted != got:
            raise CpuStateError(f"register {name} cannot hold {wanted:#x} (it reads {got:#x})")
    return context
