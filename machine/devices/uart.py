"""NS16550A UART (QEMU's ``serial``): TX to the host, RX from the input source.

Transmission is instantaneous (THRE is always set), as in QEMU when the host
side keeps up. The receiver holds one byte, or 16 with the FIFO enabled; the
driver pushes input only while :meth:`Uart16550.rx_space` is positive, as
QEMU's ``can_receive`` does. Not modelled: the FIFO trigger level and the
character-timeout interrupt (RX data interrupts as soon as one byte is there).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from ..fields import Bool, Bytes, FieldError, Int, spec
from .base import IrqLine, checked

RBR_THR_DLL, IER_DLM, IIR_FCR, LCR, MCR, LSR, MSR, SCR = range(8)
LSR_DR, LSR_THRE, LSR_TEMT = 0x01, 0x20, 0x40
IER_RDI, IER_THRI = 0x01, 0x02
IIR_NO_INT, IIR_THRI, IIR_RDI = 0x01, 0x02, 0x04
LCR_DLAB = 0x80
FCR_ENABLE, FCR_CLEAR_RX = 0x01, 0x02
FIFO_SIZE = 16
U8 = Int(8)


@dataclass(frozen=True, slots=True)
class UartState:
    """The UART's registers and received bytes not yet read (the RX FIFO or holding register)."""

    VERSION: ClassVar[int] = 1
    rx: bytes = spec(Bytes(FIFO_SIZE))
    ier: int = spec(Int(8, mask=0x0F))
    lcr: int = spec(U8)
    mcr: int = spec(Int(8, mask=0x1F))
    scr: int = spec(U8)
    fcr: int = spec(Int(8, mask=0xC9))
    dll: int = spec(U8)
    dlm: int = spec(U8)
    thr_ipending: bool = spec(Bool())

    def check_invariants(self) -> None:
        if not self.fcr & FCR_ENABLE and len(self.rx) > 1:
            raise FieldError(f"UartState.rx: {len(self.rx)} bytes in the holding register (FIFO off)")


class Uart16550:
    """The device; ``tx`` receives every transmitted byte."""

    name = "uart0"
    size = 0x100
    access_size = 1
    state_type = UartState

    def __init__(self, tx: Callable[[int], None], irq: IrqLine) -> None:
        self._tx = tx
        self._irq = irq
        self.rx: deque[int] = deque()
        self.ier = 0
        self.lcr = 0
        self.mcr = 0
        self.scr = 0
        self.fcr = 0
        self.dll = 0
        self.dlm = 0
        self.thr_ipending = False

    # -- host side ----------------------------------------------------------
    def rx_space(self) -> int:
        """Bytes the receiver can take now: the FIFO, or one holding register without it (QEMU)."""
        if self.fcr & FCR_ENABLE:
            return FIFO_SIZE - len(self.rx)
        return 0 if self.rx else 1

    def receive(self, data: bytes) -> int:
        """Queue received bytes; returns how many fitted in the FIFO."""
        taken = data[: self.rx_space()]
        self.rx.extend(taken)
        self._update()
        return len(taken)

    # -- registers ---------------------------------------------------------
    def _iir(self) -> int:
        fifo_bits = 0xC0 if self.fcr & FCR_ENABLE else 0
        if self.ier & IER_RDI and self.rx:
            return fifo_bits | IIR_RDI
        if self.ier & IER_THRI and self.thr_ipending:
            return fifo_bits | IIR_THRI
        return fifo_bits | IIR_NO_INT

    def _lsr(self) -> int:
        return LSR_THRE | LSR_TEMT | (LSR_DR if self.rx else 0)

    def _update(self) -> None:
        self._irq(self._iir() & IIR_NO_INT == 0)

    def peek(self, offset: int, size: int) -> int | None:
        if offset == LSR:
            return self._lsr()
        if offset in (IER_DLM, LCR, MCR, MSR, SCR):
            return self.read(offset, size)
        return None

    def read(self, offset: int, size: int) -> int:
        dlab = self.lcr & LCR_DLAB
        if offset == RBR_THR_DLL:
            if dlab:
                return self.dll
            value = self.rx.popleft() if self.rx else 0
            self._update()
            return value
        if offset == IER_DLM:
            return self.dlm if dlab else self.ier
        if offset == IIR_FCR:
            iir = self._iir()
            if iir & 0x0F == IIR_THRI:
                self.thr_ipending = False
                self._update()
            return iir
        if offset == LSR:
            return self._lsr()
        if offset == MSR:
            return 0xB0  # DCD, DSR, CTS asserted, as QEMU reports with no modem
        return {LCR: self.lcr, MCR: self.mcr, SCR: self.scr}.get(offset, 0)

    def write(self, offset: int, size: int, value: int) -> None:
        value &= 0xFF
        dlab = self.lcr & LCR_DLAB
        if offset == RBR_THR_DLL:
            if dlab:
                self.dll = value
                return
            self._tx(value)
            self.thr_ipending = True  # transmitted at once: THR empty again
        elif offset == IER_DLM:
            if dlab:
                self.dlm = value
                return
            if value & IER_THRI and not self.ier & IER_THRI:
                self.thr_ipending = True
            self.ier = value & 0x0F
        elif offset == IIR_FCR:
            # As QEMU's serial.c: changing the FIFO enable bit resets both FIFOs.
            if value & FCR_CLEAR_RX or (value ^ self.fcr) & FCR_ENABLE:
                self.rx.clear()
            self.fcr = value & 0xC9
        elif offset == LCR:
            self.lcr = value
        elif offset == MCR:
            self.mcr = value & 0x1F
        elif offset == SCR:
            self.scr = value
        self._update()

    # -- state ---------------------------------------------------------------
    def save(self) -> UartState:
        return UartState(bytes(self.rx), self.ier, self.lcr, self.mcr, self.scr, self.fcr, self.dll, self.dlm,
                         self.thr_ipending)  # fmt: skip

    def load(self, state: UartState, check: bool = True) -> None:
        state = checked(state, UartState) if check else state
        self.rx = deque(state.rx)
        self.ier, self.lcr, self.mcr, self.scr = state.ier, state.lcr, state.mcr, state.scr
        self.fcr, self.dll, self.dlm, self.thr_ipending = state.fcr, state.dll, state.dlm, state.thr_ipending
