"""ARM CMSDK APB UART (QEMU's ``cmsdk-apb-uart``, hw/char/cmsdk-apb-uart.c), as on ``mps2-an385``.

One transmit and one receive holding register, always 8N1. Transmission is instantaneous when the
transmitter is enabled (QEMU with a host side that keeps up). As in QEMU 7.2, a byte written to DATA
while CTRL.TX_EN is clear is never sent: it stays in the holding register with STATE.TXFULL set, and
enabling the transmitter later does not send it (every later DATA write is then a TX overrun). The
receiver takes a byte only while CTRL.RX_EN is set and RXFULL is clear (QEMU's ``uart_can_receive``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from ..fields import FieldError, Int, spec
from .base import IrqLine, checked

DATA, STATE, CTRL, INTSTATUS, BAUDDIV = 0x00, 0x04, 0x08, 0x0C, 0x10
PID4, CID3 = 0xFD0, 0xFFC
STATE_TXFULL, STATE_RXFULL, STATE_TXOVERRUN, STATE_RXOVERRUN = 0x1, 0x2, 0x4, 0x8
CTRL_TX_EN, CTRL_RX_EN, CTRL_TX_INTEN, CTRL_RX_INTEN = 0x01, 0x02, 0x04, 0x08
CTRL_TXO_INTEN, CTRL_RXO_INTEN, CTRL_HSTEST = 0x10, 0x20, 0x40
INT_TX, INT_RX, INT_TXO, INT_RXO = 0x1, 0x2, 0x4, 0x8
OVERRUN_MASK = INT_TXO | INT_RXO
UART_ID = (0x04, 0x00, 0x00, 0x00, 0x21, 0xB8, 0x1B, 0x00, 0x0D, 0xF0, 0x05, 0xB1)  # PID4..7, PID0..3, CID0..3
U8 = Int(8)


@dataclass(frozen=True, slots=True)
class CmsdkUartState:
    """QEMU's vmstate for the device: STATE, CTRL, INTSTATUS, BAUDDIV and the two holding registers."""

    VERSION: ClassVar[int] = 1
    state: int = spec(Int(32, mask=0xF))
    ctrl: int = spec(Int(32, mask=0x7F))
    intstatus: int = spec(Int(32, mask=0xF))
    bauddiv: int = spec(Int(32, mask=0xFFFFF))
    txbuf: int = spec(U8)
    rxbuf: int = spec(U8)

    def check_invariants(self) -> None:
        # INTSTATUS.TXO/RXO are not stored bits in QEMU: they are STATE's overrun bits gated by CTRL.
        if self.intstatus & OVERRUN_MASK != self.state & (self.ctrl >> 2) & OVERRUN_MASK:
            raise FieldError("CmsdkUartState.intstatus: overrun bits disagree with state and ctrl")


class CmsdkUart:
    """The device; ``tx`` receives every transmitted byte.

    The interrupt lines are QEMU's: ``tx_irq`` (TXINT), ``rx_irq`` (RXINT), ``overflow_irq`` the OR of
    TXOVRINT and RXOVRINT (the AN385 ORs those of UARTs 0-2 into IRQ 12; None: not wired) and
    ``combined_irq`` (UARTINT, unused on the AN385). Lines are driven on every update, as ``qemu_set_irq``.
    """

    size = 0x1000
    access_size = 4
    state_type = CmsdkUartState

    def __init__(
        self,
        name: str,
        tx: Callable[[int], None],
        tx_irq: IrqLine,
        rx_irq: IrqLine,
        overflow_irq: IrqLine | None = None,
        combined_irq: IrqLine | None = None,
    ) -> None:
        self._name: Callable[[], str] = lambda: name  # configuration, kept as wiring (not state)
        self._tx = tx
        self._tx_irq = tx_irq
        self._rx_irq = rx_irq
        self._overflow_irq = overflow_irq or _unwired
        self._combined_irq = combined_irq or _unwired
        self.state = 0
        self.ctrl = 0
        self.intstatus = 0
        self.bauddiv = 0
        self.txbuf = 0
        self.rxbuf = 0

    @property
    def name(self) -> str:
        """The device's name on the board (``uart0`` .. ``uart4``)."""
        return self._name()

    # -- host side ----------------------------------------------------------
    def rx_space(self) -> int:
        """Bytes the receiver can take now: 1 while RX is enabled and RXFULL is clear (``uart_can_receive``)."""
        return 1 if self.ctrl & CTRL_RX_EN and not self.state & STATE_RXFULL else 0

    def receive(self, data: bytes) -> int:
        """Take the first byte of ``data`` if there is room (``uart_receive``); returns how many were taken."""
        if not data or not self.rx_space():
            return 0
        self.rxbuf = data[0]
        self.state |= STATE_RXFULL
        if self.ctrl & CTRL_RX_INTEN:
            self.intstatus |= INT_RX
        self._update()
        return 1

    # -- registers ---------------------------------------------------------
    def _update(self) -> None:
        """``cmsdk_apb_uart_update``: TXO/RXO status follow STATE's overrun bits gated by CTRL, then the lines."""
        self.intstatus = (self.intstatus & ~OVERRUN_MASK) | (self.state & (self.ctrl >> 2) & OVERRUN_MASK)
        self._tx_irq(bool(self.intstatus & INT_TX))
        self._rx_irq(bool(self.intstatus & INT_RX))
        self._overflow_irq(bool(self.intstatus & OVERRUN_MASK))
        self._combined_irq(bool(self.intstatus))

    def _transmit(self) -> None:
        """``uart_transmit``: send the held byte if the transmitter is enabled (QEMU never retries later)."""
        if not self.ctrl & CTRL_TX_EN or not self.state & STATE_TXFULL:
            return
        self._tx(self.txbuf)
        self.state &= ~STATE_TXFULL
        if self.ctrl & CTRL_TX_INTEN:  # TXFULL going from set to clear raises the TX interrupt
            self.intstatus |= INT_TX
        self._update()

    def peek(self, offset: int, size: int) -> int | None:
        if offset == DATA:
            return None  # reading DATA clears RXFULL
        return self.read(offset, size)

    def read(self, offset: int, size: int) -> int:
        if offset == DATA:
            self.state &= ~STATE_RXFULL
            self._update()
            value = self.rxbuf
        elif offset == STATE:
            value = self.state
        elif offset == CTRL:
            value = self.ctrl
        elif offset == INTSTATUS:
            value = self.intstatus
        elif offset == BAUDDIV:
            value = self.bauddiv
        elif PID4 <= offset <= CID3:
            value = UART_ID[(offset - PID4) // 4] if offset % 4 == 0 else 0
        else:
            value = 0  # QEMU: guest error, reads as zero
        return value & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        value &= (1 << (8 * size)) - 1
        if offset == DATA:
            self.txbuf = value & 0xFF
            if self.state & STATE_TXFULL:
                self.state |= STATE_TXOVERRUN  # QEMU: the held byte is replaced, the overrun noted
                self._update()
            else:
                self.state |= STATE_TXFULL
                self._transmit()
        elif offset == STATE:
            self.state &= ~(value & (STATE_TXOVERRUN | STATE_RXOVERRUN))  # bits 2, 3 are W1C
            self._update()
        elif offset == CTRL:
            self.ctrl = value & 0x7F
            self._update()
        elif offset == INTSTATUS:
            # All W1C; clearing TXO/RXO clears the overrun bits in STATE that they reflect.
            self.state &= ~(value & OVERRUN_MASK)
            self.intstatus &= ~value
            self._update()
        elif offset == BAUDDIV:
            self.bauddiv = value & 0xFFFFF

    # -- state ---------------------------------------------------------------
    def save(self) -> CmsdkUartState:
        return CmsdkUartState(self.state, self.ctrl, self.intstatus, self.bauddiv, self.txbuf, self.rxbuf)

    def load(self, state: CmsdkUartState, check: bool = True) -> None:
        state = checked(state, CmsdkUartState) if check else state
        self.state, self.ctrl, self.intstatus = state.state, state.ctrl, state.intstatus
        self.bauddiv, self.txbuf, self.rxbuf = state.bauddiv, state.txbuf, state.rxbuf


def _unwired(level: bool) -> None:
    """An interrupt output the board leaves unconnected."""
