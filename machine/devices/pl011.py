"""Arm PrimeCell PL011 UART (QEMU 7.2's ``pl011``, ``hw/char/pl011.c``), the Arm ``virt`` board's ``uart0``.

Transmission is instantaneous: a write to UARTDR hands the byte to ``tx`` and raises TXRIS at once (QEMU
writes it synchronously and sets ``INT_TX``), so UARTFR always shows the transmit FIFO empty. The receiver is
QEMU's: 16 slots used as a ring when UARTLCR_H.FEN is set, a single slot (slot 0) otherwise; RXRIS is raised
when the FIFO goes from empty to one byte (QEMU's read trigger is always 1) and cleared when a read empties it.
A read of an empty UARTDR returns whatever the slot under the read position last held, as QEMU does, which is
why the whole ring (not just the queued bytes) is state.

Not modelled, as in QEMU 7.2: the enable bits of UARTCR, loopback, the FIFO trigger levels (UARTIFLS is
stored only), the receive-timeout, modem and error interrupts, DMA. Only bytes arrive (no break
condition), so every received character has clear error bits and UARTRSR always reads 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from ..fields import Bytes, FieldError, Int, spec
from .base import IrqLine, checked

# Register offsets (QEMU decodes ``offset >> 2``; a narrower access at an unaligned offset hits the same word).
DR, RSR_ECR, FR, ILPR, IBRD, FBRD, LCR_H, CR, IFLS, IMSC, RIS, MIS, ICR, DMACR = (
    0x00, 0x04, 0x18, 0x20, 0x24, 0x28, 0x2C, 0x30, 0x34, 0x38, 0x3C, 0x40, 0x44, 0x48)  # fmt: skip
PERIPH_ID = 0xFE0  # UARTPeriphID0..3, UARTPCellID0..3: one byte per word up to 0xFFC
ID_BYTES = bytes((0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1))  # QEMU's pl011_id_arm

FR_RXFE, FR_RXFF, FR_TXFE = 0x10, 0x40, 0x80
INT_RX, INT_TX = 0x10, 0x20  # UARTRIS bits QEMU 7.2 ever sets
LCR_FEN = 0x10
FIFO_DEPTH = 16
RESET_CR, RESET_IFLS = 0x300, 0x12  # TXE | RXE; both trigger levels at 1/2, as QEMU's reset
U32 = Int(32)


@dataclass(frozen=True, slots=True)
class Pl011State:
    """The receive ring (its 16 slots, read position, count), and every register QEMU keeps."""

    VERSION: ClassVar[int] = 1
    fifo: bytes = spec(Bytes(FIFO_DEPTH))  # exactly FIFO_DEPTH slots (check_invariants)
    read_pos: int = spec(Int(8, maximum=FIFO_DEPTH - 1))
    read_count: int = spec(Int(8, maximum=FIFO_DEPTH))
    lcr: int = spec(U32)  # UARTLCR_H
    cr: int = spec(U32)  # UARTCR
    ilpr: int = spec(U32)
    ibrd: int = spec(U32)
    fbrd: int = spec(U32)
    ifls: int = spec(U32)
    imsc: int = spec(U32)
    ris: int = spec(Int(32, mask=INT_RX | INT_TX))
    dmacr: int = spec(U32)

    def check_invariants(self) -> None:
        if len(self.fifo) != FIFO_DEPTH:
            raise FieldError(f"Pl011State.fifo: {len(self.fifo)} slots, not {FIFO_DEPTH}")
        if not self.lcr & LCR_FEN and (self.read_count > 1 or self.read_pos):
            raise FieldError("Pl011State: FIFO off but more than the single slot 0 in use")


class Pl011:
    """The device; ``tx`` receives every transmitted byte, ``irq`` is UARTINTR (the combined interrupt)."""

    name = "uart0"
    size = 0x1000
    access_size = 4
    state_type = Pl011State

    def __init__(self, tx: Callable[[int], None], irq: IrqLine) -> None:
        self._tx = tx
        self._irq = irq
        self.fifo = bytearray(FIFO_DEPTH)
        self.read_pos = 0
        self.read_count = 0
        self.lcr = 0
        self.cr = RESET_CR
        self.ilpr = 0
        self.ibrd = 0
        self.fbrd = 0
        self.ifls = RESET_IFLS
        self.imsc = 0
        self.ris = 0
        self.dmacr = 0

    # -- host side ----------------------------------------------------------
    def _depth(self) -> int:
        return FIFO_DEPTH if self.lcr & LCR_FEN else 1

    def rx_space(self) -> int:
        """Bytes the receiver can take now: the free FIFO slots, or the one slot with the FIFO off.

        QEMU's ``pl011_can_receive`` offers one byte at a time while this is positive; taking several at
        once fills the same slots in the same order.
        """
        return self._depth() - self.read_count

    def receive(self, data: bytes) -> int:
        """Queue received bytes (QEMU's ``pl011_put_fifo`` for each); returns how many fitted."""
        taken = data[: self.rx_space()]
        depth = self._depth()
        for byte in taken:
            self.fifo[(self.read_pos + self.read_count) & (depth - 1)] = byte
            self.read_count += 1
            if self.read_count == 1:  # QEMU: read_count reached read_trigger (always 1)
                self.ris |= INT_RX
                self._update()
        return len(taken)

    # -- registers ---------------------------------------------------------
    def _update(self) -> None:
        self._irq(self.ris & self.imsc != 0)

    def _fr(self) -> int:
        """UARTFR: QEMU keeps flags that always equal this (TXFE set for good, RXFE/RXFF by the count)."""
        empty = FR_RXFE if self.read_count == 0 else 0
        full = FR_RXFF if self.read_count == self._depth() else 0
        return FR_TXFE | empty | full

    def _pop(self) -> int:
        """UARTDR read: QEMU returns the slot under the read position even when the FIFO is empty."""
        value = self.fifo[self.read_pos]
        if self.read_count:
            self.read_count -= 1
            self.read_pos = (self.read_pos + 1) & (self._depth() - 1)
        if self.read_count == 0:
            self.ris &= ~INT_RX
        self._update()
        return value

    def _register(self, word: int) -> int:
        """The value of the register at word index ``word`` (side-effect-free ones only)."""
        if 0x3F8 <= word < 0x400:
            return ID_BYTES[word - 0x3F8]
        return {
            FR >> 2: self._fr(), ILPR >> 2: self.ilpr, IBRD >> 2: self.ibrd, FBRD >> 2: self.fbrd,
            LCR_H >> 2: self.lcr, CR >> 2: self.cr, IFLS >> 2: self.ifls, IMSC >> 2: self.imsc,
            RIS >> 2: self.ris, MIS >> 2: self.ris & self.imsc, DMACR >> 2: self.dmacr,
        }.get(word, 0)  # fmt: skip

    def peek(self, offset: int, size: int) -> int | None:
        if offset >> 2 == DR >> 2:
            return None  # pops the receive FIFO
        return self.read(offset, size)

    def read(self, offset: int, size: int) -> int:
        if size == 8:  # QEMU splits wider accesses into two 32-bit ones
            return self.read(offset, 4) | self.read(offset + 4, 4) << 32
        word = offset >> 2
        value = self._pop() if word == DR >> 2 else self._register(word)
        return value & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        if size == 8:
            self.write(offset, 4, value & 0xFFFF_FFFF)
            self.write(offset + 4, 4, value >> 32)
            return
        value &= (1 << (8 * size)) - 1
        word = offset >> 2
        if word == DR >> 2:
            self._tx(value & 0xFF)
            self.ris |= INT_TX
            self._update()
        elif word == LCR_H >> 2:
            if (self.lcr ^ value) & LCR_FEN:  # QEMU resets the FIFOs when FEN changes
                self.read_pos = self.read_count = 0
            self.lcr = value
        elif word == IMSC >> 2:
            self.imsc = value
            self._update()
        elif word == ICR >> 2:
            self.ris &= ~value
            self._update()
        else:
            # UARTRSR/UARTECR writes clear the (always clear) error bits; UARTFR, UARTRIS, UARTMIS are read-only.
            attr = {ILPR: "ilpr", IBRD: "ibrd", FBRD: "fbrd", CR: "cr", IFLS: "ifls", DMACR: "dmacr"}.get(word << 2)
            if attr is not None:
                setattr(self, attr, value)

    # -- state ---------------------------------------------------------------
    def save(self) -> Pl011State:
        return Pl011State(bytes(self.fifo), self.read_pos, self.read_count, self.lcr, self.cr, self.ilpr,
                          self.ibrd, self.fbrd, self.ifls, self.imsc, self.ris, self.dmacr)  # fmt: skip

    def load(self, state: Pl011State, check: bool = True) -> None:
        state = checked(state, Pl011State) if check else state
        self.fifo = bytearray(state.fifo)
        self.read_pos, self.read_count = state.read_pos, state.read_count
        self.lcr, self.cr, self.ilpr, self.ibrd, self.fbrd = state.lcr, state.cr, state.ilpr, state.ibrd, state.fbrd
        self.ifls, self.imsc, self.ris, self.dmacr = state.ifls, state.imsc, state.ris, state.dmacr
