"""Arm GICv2 (QEMU 7.2's ``arm_gic``, ``hw/intc/arm_gic.c``) as on the Arm ``virt`` board with one CPU.

QEMU's ``virt`` (``gic-version=2``, no ``secure=on``, no ``virtualization=on``) makes a revision-2 GIC with
one CPU interface, no security or virtualization extensions and ``num-irq`` 288: 16 SGIs, 16 PPIs, 256
SPIs (GICD_TYPER = 0x8). Two register frames share one model: the distributor (GICD, 0x08000000) and the
CPU interface (GICC, 0x08010000). Semantics follow ``arm_gic.c`` for that configuration:

- Pending: edge-triggered interrupts latch pending on a rising edge of their input; a level-triggered one
  is pending while its line is high or while a GICD_ISPENDR write latched it (an acknowledge or GICD_ICPENDR
  clears the latch). Enabling an interrupt never latches it (QEMU 7.2.14's "fix spurious level triggered
  interrupts"). GICD_ICFGR decides edge or level; SGIs are always edge-triggered and enabled.
- Groups exist (a GICv2 has them even without the security extensions): group 1 interrupts read as 1022
  from GICC_IAR/GICC_HPPIR unless GICC_CTLR.AckCtl is set, and group 0 ones are signalled as FIQ when
  GICC_CTLR.FIQEn is set (QEMU's ``virt`` wires the GIC's FIQ output to the CPU: :meth:`GicV2.fiq_pending`).
- Priorities have 8 bits. An acknowledge sets the interrupt's bit in GICC_APRn (group 0) or GICC_NSAPRn
  (group 1) at its group priority (the binary point masks the low bits); the running priority is the lowest
  set bit of those registers, as QEMU recomputes it. GICC_EOIR drops that priority and, unless
  GICC_CTLR.EOImodeS is set, deactivates; GICC_DIR deactivates in EOImode 1.
- GICD_ITARGETSRn are RAZ/WI (a uniprocessor GIC), SGIs sent through GICD_SGIR to other CPUs go nowhere, and
  GICC_AIAR/AEOIR/AHPPIR are RAZ/WI, as in QEMU 7.2 (which does not implement the aliased registers).

The whole state (distributor and CPU interface registers) is one :class:`GicV2State`, saved and loaded by
the distributor; the CPU interface saves an empty :class:`GicCpuInterfaceState`. Loading restores registers
only: no output is driven (the board keeps the levels it last saw and can poll :meth:`GicV2.irq_pending`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from ..fields import FieldError, Int, Tuple, spec
from .base import IrqLine, checked

NUM_IRQ = 288  # QEMU virt: NUM_IRQS (256) SPIs + 32 internal
NUM_SGI, NUM_INTERNAL = 16, 32
SPURIOUS, GROUP1_HIDDEN = 1023, 1022
VIRT_GICD_BASE, VIRT_GICC_BASE = 0x0800_0000, 0x0801_0000
TIMER_PPIS = {"hyp": 26, "virt": 27, "sec": 29, "phys": 30}  # QEMU virt's arch timer PPIs (INTIDs)

GICD_CTLR, GICD_TYPER, GICD_IIDR, GICD_IGROUPR = 0x000, 0x004, 0x008, 0x080
GICD_ISENABLER, GICD_ICENABLER, GICD_ISPENDR, GICD_ICPENDR = 0x100, 0x180, 0x200, 0x280
GICD_ISACTIVER, GICD_ICACTIVER, GICD_IPRIORITYR, GICD_ITARGETSR = 0x300, 0x380, 0x400, 0x800
GICD_ICFGR, GICD_SGIR, GICD_CPENDSGIR, GICD_SPENDSGIR, GICD_PIDR4 = 0xC00, 0xF00, 0xF10, 0xF20, 0xFD0
GICD_ID_BYTES = bytes((0x04, 0, 0, 0, 0x90, 0xB4, 0x2B, 0x00, 0x0D, 0xF0, 0x05, 0xB1))  # gic_id_gicv2
TYPER_VALUE = NUM_IRQ // 32 - 1  # ITLinesNumber; CPUNumber 0, no SecurityExtn
IIDR_VALUE = 0x43B  # Arm's JEP106 code

GICC_CTLR, GICC_PMR, GICC_BPR, GICC_IAR, GICC_EOIR, GICC_RPR, GICC_HPPIR = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18
GICC_ABPR, GICC_AIAR, GICC_AEOIR, GICC_AHPPIR = 0x1C, 0x20, 0x24, 0x28
GICC_APR, GICC_NSAPR, GICC_IIDR, GICC_DIR = 0xD0, 0xE0, 0xFC, 0x1000
GICC_IIDR_VALUE = 2 << 16 | 0x43B  # architecture version 2, Arm

EN_GRP0, EN_GRP1 = 0x1, 0x2
CTLR_ACK_CTL, CTLR_FIQ_EN, CTLR_CBPR, CTLR_EOIMODE = 0x4, 0x8, 0x10, 0x200
GICC_CTLR_MASK = 0x21F  # QEMU's GICC_CTLR_V2_MASK
IDLE_PRIORITY = 0x100
NUM_APRS = 4  # 128 preemption levels (GIC_MIN_BPR 0)
SGI_BITS = (1 << NUM_SGI) - 1
MASK32 = 0xFFFF_FFFF
_BITMAP = Int(NUM_IRQ)  # bit n = interrupt n
_U32 = Int(32)


def _lowest(bits: int) -> int:
    return (bits & -bits).bit_length() - 1


def _ignore(_level: bool) -> None:
    pass


@dataclass(frozen=True, slots=True)
class GicV2State:
    """Distributor and CPU interface together. Per-interrupt flags are bitmaps (bit n = INTID n)."""

    VERSION: ClassVar[int] = 1
    ctlr: int = spec(Int(32, mask=EN_GRP0 | EN_GRP1))  # GICD_CTLR
    cpu_ctlr: int = spec(Int(32, mask=GICC_CTLR_MASK))  # GICC_CTLR
    pmr: int = spec(Int(8))  # GICC_PMR
    bpr: int = spec(Int(8, maximum=7))  # GICC_BPR
    abpr: int = spec(Int(8, maximum=7))  # GICC_ABPR (at least 1)
    apr: tuple[int, ...] = spec(Tuple(NUM_APRS, _U32))  # GICC_APRn: active group 0 priorities
    nsapr: tuple[int, ...] = spec(Tuple(NUM_APRS, _U32))  # GICC_NSAPRn: active group 1 priorities
    group: int = spec(_BITMAP)  # GICD_IGROUPRn
    enabled: int = spec(_BITMAP)  # GICD_ISENABLERn
    pending: int = spec(_BITMAP)  # the pending latch (edge, software, SGI); level ones also pend on their line
    active: int = spec(_BITMAP)  # GICD_ISACTIVERn
    level: int = spec(_BITMAP)  # input line levels (PPIs, SPIs)
    edge: int = spec(_BITMAP)  # GICD_ICFGRn: edge-triggered
    priority: tuple[int, ...] = spec(Tuple(NUM_IRQ, Int(8)))  # GICD_IPRIORITYRn
    sgi_sources: tuple[int, ...] = spec(Tuple(NUM_SGI, Int(8)))  # GICD_SPENDSGIRn: source CPUs per SGI

    def check_invariants(self) -> None:
        if self.enabled & self.edge & SGI_BITS != SGI_BITS or self.level & SGI_BITS:
            raise FieldError("GicV2State: SGIs must stay enabled, edge-triggered, with no input line")
        if self.abpr < 1:
            raise FieldError("GicV2State.abpr: below 1 (GIC_MIN_ABPR)")


@dataclass(frozen=True, slots=True)
class GicCpuInterfaceState:
    """Empty: the CPU interface's registers are part of :class:`GicV2State` (saved by the distributor)."""

    VERSION: ClassVar[int] = 1


class GicDistributor:
    """GICD frame and the model behind both frames; ``on_irq``/``on_fiq`` get the CPU's IRQ/FIQ level after
    every change that may affect it (possibly unchanged, as QEMU's ``gic_update`` drives them)."""

    name = "gicd"
    size = 0x10000
    access_size = 4
    state_type = GicV2State

    def __init__(self, on_irq: IrqLine, on_fiq: IrqLine = _ignore) -> None:
        self._on_irq = on_irq
        self._on_fiq = on_fiq
        self.ctlr = 0
        self.cpu_ctlr = 0
        self.pmr = 0
        self.bpr = 0
        self.abpr = 1
        self.apr = [0] * NUM_APRS
        self.nsapr = [0] * NUM_APRS
        self.group = 0
        self.enabled = SGI_BITS
        self.pending = 0
        self.active = 0
        self.level = 0
        self.edge = SGI_BITS
        self.priority = [0] * NUM_IRQ
        self.sgi_sources = [0] * NUM_SGI

    # -- signalling (QEMU's gic_update) --------------------------------------
    def running_priority(self) -> int:
        """GICC_RPR before clamping: the highest active group priority, 0x100 when idle."""
        for i in range(NUM_APRS):
            bits = self.apr[i] | self.nsapr[i]
            if bits:
                return (32 * i + _lowest(bits)) << 1
        return IDLE_PRIORITY

    def _signals(self) -> tuple[int, bool, bool]:
        """(the interrupt GICC_HPPIR names or 1023, IRQ level, FIQ level)."""
        if not self.ctlr & (EN_GRP0 | EN_GRP1) or not self.cpu_ctlr & (EN_GRP0 | EN_GRP1):
            return SPURIOUS, False, False
        candidates = self.enabled & ~self.active & (self.pending | (self.level & ~self.edge))
        best, best_prio = SPURIOUS, IDLE_PRIORITY
        while candidates:
            irq = _lowest(candidates)
            candidates &= candidates - 1
            if self.priority[irq] < best_prio:  # ties go to the lowest INTID
                best, best_prio = irq, self.priority[irq]
        if best_prio >= self.pmr:
            return SPURIOUS, False, False
        group_bit = 1 << (self.group >> best & 1)
        if best_prio >= self.running_priority() or not self.ctlr & self.cpu_ctlr & group_bit:
            return best, False, False
        fiq = group_bit == EN_GRP0 and bool(self.cpu_ctlr & CTLR_FIQ_EN)
        return best, not fiq, fiq

    def irq_pending(self) -> bool:
        """The CPU's IRQ input now (QEMU's ``parent_irq``)."""
        return self._signals()[1]

    def fiq_pending(self) -> bool:
        """The CPU's FIQ input now (QEMU's ``parent_fiq``)."""
        return self._signals()[2]

    def _update(self) -> None:
        _, irq, fiq = self._signals()
        self._on_irq(irq)
        self._on_fiq(fiq)

    def set_line(self, intid: int, level: bool) -> None:
        """An input changes level (QEMU's ``gic_set_irq``): a rising edge latches an edge-triggered one."""
        bit = 1 << intid
        if bool(self.level & bit) == level:
            return
        if level:
            self.level |= bit
            if self.edge & bit:
                self.pending |= bit
        else:
            self.level &= ~bit
        self._update()

    # -- distributor registers (QEMU works byte by byte) ----------------------
    def _read_byte(self, offset: int) -> int:
        if offset < GICD_IGROUPR:
            return {GICD_CTLR: self.ctlr, GICD_TYPER: TYPER_VALUE, GICD_IIDR: IIDR_VALUE & 0xFF,
                    GICD_IIDR + 1: IIDR_VALUE >> 8}.get(offset, 0)  # fmt: skip
        if offset < GICD_ISENABLER:
            return self.group >> 8 * (offset - GICD_IGROUPR) & 0xFF  # bitmaps are 0 past NUM_IRQ
        if offset < GICD_IPRIORITYR:  # set/clear pairs: enable, pending (latch or high level line), active
            pair, byte = divmod(offset - GICD_ISENABLER, 0x80)
            bits = (self.enabled, self.pending | (self.level & ~self.edge), self.active)[pair // 2]
            return bits >> 8 * byte & 0xFF
        if offset < GICD_ITARGETSR:
            irq = offset - GICD_IPRIORITYR
            return self.priority[irq] if irq < NUM_IRQ else 0
        if GICD_ICFGR <= offset < GICD_SGIR:
            irq = 4 * (offset - GICD_ICFGR)
            edges = self.edge >> irq & 0xF if irq < NUM_IRQ else 0
            return sum(2 << 2 * i for i in range(4) if edges >> i & 1)  # Int_config[1] set: edge-triggered
        if GICD_CPENDSGIR <= offset < GICD_SPENDSGIR + NUM_SGI:
            return self.sgi_sources[(offset - GICD_CPENDSGIR) % NUM_SGI]
        if GICD_PIDR4 <= offset < 0x1000 and not offset & 3:
            return GICD_ID_BYTES[(offset - GICD_PIDR4) >> 2]
        return 0  # reserved, GICD_ITARGETSRn (RAZ/WI with one CPU), GICD_SGIR (write-only)

    def _assign(self, name: str, irq: int, mask: int, bits: int) -> None:
        """Set the flags ``name`` selected by ``mask`` (bit i: INTID ``irq`` + i) to those of ``bits``."""
        if irq < NUM_IRQ:
            setattr(self, name, getattr(self, name) & ~(mask << irq) | (bits & mask) << irq)

    def _write_byte(self, offset: int, value: int) -> None:
        if offset == GICD_CTLR:
            self.ctlr = value & (EN_GRP0 | EN_GRP1)
        elif GICD_IGROUPR <= offset < GICD_ISENABLER:
            self._assign("group", 8 * (offset - GICD_IGROUPR), 0xFF, value)
        elif GICD_ISENABLER <= offset < GICD_IPRIORITYR:
            pair, byte = divmod(offset - GICD_ISENABLER, 0x80)
            if byte < NUM_SGI // 8 and pair < 4:  # SGIs stay enabled; their pending state is not written here
                value = 0xFF if pair == 0 else 0
            self._assign(("enabled", "pending", "active")[pair // 2], 8 * byte, value, 0 if pair % 2 else 0xFF)
        elif GICD_IPRIORITYR <= offset < GICD_ITARGETSR:
            if offset - GICD_IPRIORITYR < NUM_IRQ:
                self.priority[offset - GICD_IPRIORITYR] = value
        elif GICD_ICFGR <= offset < GICD_SGIR:
            irq = 4 * (offset - GICD_ICFGR)
            if irq < NUM_SGI:
                value |= 0xAA  # SGIs stay edge-triggered
            self._assign("edge", irq, 0xF, sum(1 << i for i in range(4) if value & 2 << 2 * i))
        elif GICD_CPENDSGIR <= offset < GICD_SPENDSGIR:
            sgi = offset - GICD_CPENDSGIR
            self.sgi_sources[sgi] &= ~value
            if not self.sgi_sources[sgi]:
                self.pending &= ~(1 << sgi)
        elif GICD_SPENDSGIR <= offset < GICD_SPENDSGIR + NUM_SGI:
            sgi = offset - GICD_SPENDSGIR
            self.pending |= 1 << sgi
            self.sgi_sources[sgi] |= value

    def _write_sgir(self, value: int) -> None:
        """GICD_SGIR: only the sole CPU (CPU 0) can be a target; it is also the source."""
        sgi, target_filter = value & 0xF, value >> 24 & 3
        targets = (value >> 16 & 0xFF, 0xFE, 0x01, 0xFF)[target_filter]
        if targets & 1:
            self.pending |= 1 << sgi
            self.sgi_sources[sgi] |= 1

    def peek(self, offset: int, size: int) -> int | None:
        return self.read(offset, size)  # no distributor read has a side effect

    def read(self, offset: int, size: int) -> int:
        if size == 8:  # QEMU splits wider accesses into two 32-bit ones
            return self.read(offset, 4) | self.read(offset + 4, 4) << 32
        if offset + size > 0x1000:  # QEMU's distributor frame is 4 KiB
            return 0
        return sum(self._read_byte(offset + i) << 8 * i for i in range(size))

    def write(self, offset: int, size: int, value: int) -> None:
        if size == 8:
            self.write(offset, 4, value & MASK32)
            self.write(offset + 4, 4, value >> 32)
            return
        if offset + size > 0x1000:
            return
        if size == 4 and offset == GICD_SGIR:
            self._write_sgir(value)
        else:
            for i in range(size):
                self._write_byte(offset + i, value >> 8 * i & 0xFF)
        self._update()

    # -- CPU interface registers ----------------------------------------------
    def _hppir(self) -> int:
        """GICC_HPPIR (QEMU's ``gic_get_current_pending_irq``)."""
        irq = self._signals()[0]
        if irq < GROUP1_HIDDEN and self.group >> irq & 1 and not self.cpu_ctlr & CTLR_ACK_CTL:
            return GROUP1_HIDDEN
        return irq

    def _acknowledge(self) -> int:
        """GICC_IAR read (QEMU's ``gic_acknowledge_irq``): activate the highest pending interrupt."""
        irq = self._hppir()
        if irq >= GROUP1_HIDDEN:
            return irq
        if self.priority[irq] >= self.running_priority():
            return SPURIOUS
        group1 = self.group >> irq & 1
        bpr = self.abpr - 1 if group1 and not self.cpu_ctlr & CTLR_CBPR else self.bpr
        level = (self.priority[irq] & (0xFF << bpr + 1) & 0xFF) >> 1  # preemption level of the group priority
        aprs = self.nsapr if group1 else self.apr
        aprs[level // 32] |= 1 << level % 32
        self.active |= 1 << irq
        value = irq
        if irq < NUM_SGI:
            sources = self.sgi_sources[irq]
            source = _lowest(sources) if sources else 0  # QEMU asserts there is one
            self.sgi_sources[irq] = sources & ~(1 << source)
            if not self.sgi_sources[irq]:
                self.pending &= ~(1 << irq)
            value |= (source & 7) << 10
        else:
            self.pending &= ~(1 << irq)
        self._update()
        return value

    def _end_of_interrupt(self, irq: int) -> None:
        """GICC_EOIR (QEMU's ``gic_complete_irq``): priority drop, and deactivation unless EOImode is 1."""
        if irq >= NUM_IRQ or self.running_priority() == IDLE_PRIORITY:
            return
        aprs = self.nsapr if self.group >> irq & 1 else self.apr
        for i in range(NUM_APRS):
            if aprs[i]:
                aprs[i] &= aprs[i] - 1  # the lowest set bit: the running priority's
                break
        if not self.cpu_ctlr & CTLR_EOIMODE:
            self.active &= ~(1 << irq)
        self._update()

    def cpu_peek(self, offset: int, size: int) -> int | None:
        if GICC_IAR in ((offset, offset + 4) if size == 8 else (offset,)):
            return None  # acknowledges
        return self.cpu_read(offset, size)

    def cpu_read(self, offset: int, size: int) -> int:
        if size == 8:
            return self.cpu_read(offset, 4) | self.cpu_read(offset + 4, 4) << 32
        if offset == GICC_IAR:
            value = self._acknowledge()
        elif GICC_APR <= offset < GICC_APR + 4 * NUM_APRS and not offset & 3:
            value = self.apr[(offset - GICC_APR) >> 2]
        elif GICC_NSAPR <= offset < GICC_NSAPR + 4 * NUM_APRS and not offset & 3:
            value = self.nsapr[(offset - GICC_NSAPR) >> 2]
        else:
            value = {
                GICC_CTLR: self.cpu_ctlr, GICC_PMR: self.pmr, GICC_BPR: self.bpr, GICC_ABPR: self.abpr,
                GICC_RPR: min(self.running_priority(), 0xFF), GICC_HPPIR: self._hppir(), GICC_IIDR: GICC_IIDR_VALUE,
            }.get(offset, 0)  # fmt: skip
        return value & ((1 << (8 * size)) - 1)

    def cpu_write(self, offset: int, size: int, value: int) -> None:
        if size == 8:
            self.cpu_write(offset, 4, value & MASK32)
            self.cpu_write(offset + 4, 4, value >> 32)
            return
        value &= (1 << (8 * size)) - 1
        if offset == GICC_EOIR:
            self._end_of_interrupt(value & 0x3FF)
            return
        if offset == GICC_CTLR:
            self.cpu_ctlr = value & GICC_CTLR_MASK
        elif offset == GICC_PMR:
            self.pmr = value & 0xFF
        elif offset == GICC_BPR:
            self.bpr = value & 7
        elif offset == GICC_ABPR:
            self.abpr = max(value & 7, 1)
        elif GICC_APR <= offset < GICC_APR + 4 * NUM_APRS and not offset & 3:
            self.apr[(offset - GICC_APR) >> 2] = value
        elif GICC_NSAPR <= offset < GICC_NSAPR + 4 * NUM_APRS and not offset & 3:
            self.nsapr[(offset - GICC_NSAPR) >> 2] = value
        elif offset == GICC_DIR:
            irq = value & 0x3FF
            if irq < NUM_IRQ and self.cpu_ctlr & CTLR_EOIMODE:  # ignored in EOImode 0 (UNPREDICTABLE)
                self.active &= ~(1 << irq)
        else:
            return  # read-only or reserved: QEMU does not even update
        self._update()

    # -- state ---------------------------------------------------------------
    def save(self) -> GicV2State:
        return GicV2State(self.ctlr, self.cpu_ctlr, self.pmr, self.bpr, self.abpr, tuple(self.apr),
                          tuple(self.nsapr), self.group, self.enabled, self.pending, self.active, self.level,
                          self.edge, tuple(self.priority), tuple(self.sgi_sources))  # fmt: skip

    def load(self, state: GicV2State, check: bool = True) -> None:
        state = checked(state, GicV2State) if check else state
        self.ctlr, self.cpu_ctlr, self.pmr, self.bpr, self.abpr = (
            state.ctlr, state.cpu_ctlr, state.pmr, state.bpr, state.abpr)  # fmt: skip
        self.apr, self.nsapr = list(state.apr), list(state.nsapr)
        self.group, self.enabled, self.pending, self.active = state.group, state.enabled, state.pending, state.active
        self.level, self.edge = state.level, state.edge
        self.priority, self.sgi_sources = list(state.priority), list(state.sgi_sources)


class GicCpuInterface:
    """GICC frame: register access goes to the distributor's model (no state of its own)."""

    name = "gicc"
    size = 0x10000
    access_size = 4
    state_type = GicCpuInterfaceState

    def __init__(self, distributor: GicDistributor) -> None:
        self._read = distributor.cpu_read
        self._write = distributor.cpu_write
        self._peek = distributor.cpu_peek

    def peek(self, offset: int, size: int) -> int | None:
        return self._peek(offset, size)

    def read(self, offset: int, size: int) -> int:
        return self._read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        self._write(offset, size, value)

    def save(self) -> GicCpuInterfaceState:
        return GicCpuInterfaceState()

    def load(self, state: GicCpuInterfaceState, check: bool = True) -> None:
        if check:
            checked(state, GicCpuInterfaceState)


class GicV2:
    """The GIC: its two frames (``distributor``, ``cpu_interface``), its inputs and the CPU's IRQ/FIQ."""

    def __init__(self, on_irq: IrqLine, on_fiq: IrqLine = _ignore) -> None:
        self.distributor = GicDistributor(on_irq, on_fiq)
        self.cpu_interface = GicCpuInterface(self.distributor)

    def line(self, intid: int) -> Callable[[bool], None]:
        """The input of a PPI (16..31, e.g. the timers' :data:`TIMER_PPIS`) or an SPI (32..287)."""
        if not NUM_SGI <= intid < NUM_IRQ:
            raise ValueError(f"no GIC input for INTID {intid}")
        set_line = self.distributor.set_line
        return lambda level: set_line(intid, level)

    def irq_pending(self) -> bool:
        """The CPU's IRQ input (QEMU's ``parent_irq``)."""
        return self.distributor.irq_pending()

    def highest_pending(self) -> int:
        """The INTID the CPU interface would signal now (1023: spurious), without acknowledging it."""
        return self.distributor._signals()[0]

    def fiq_pending(self) -> bool:
        """The CPU's FIQ input: a group 0 interrupt with GICC_CTLR.FIQEn set."""
        return self.distributor.fiq_pending()
