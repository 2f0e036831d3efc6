"""machine/devices/cmsdk_uart.py: the CMSDK APB UART as QEMU 7.2's cmsdk-apb-uart.c (checked against
qemu-system-arm -M mps2-an385 where noted)."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from machine.devices.cmsdk_uart import (
    BAUDDIV,
    CID3,
    CTRL,
    CTRL_RX_EN,
    CTRL_RX_INTEN,
    CTRL_RXO_INTEN,
    CTRL_TX_EN,
    CTRL_TX_INTEN,
    CTRL_TXO_INTEN,
    DATA,
    INT_RX,
    INT_RXO,
    INT_TX,
    INT_TXO,
    INTSTATUS,
    PID4,
    STATE,
    STATE_RXFULL,
    STATE_RXOVERRUN,
    STATE_TXFULL,
    STATE_TXOVERRUN,
    CmsdkUart,
    CmsdkUartState,
)
from machine.fields import FieldError, decode_fields, encode_fields
from tests.unit.lines import Line


class Uart:
    """A UART with its lines and what it sent."""

    def __init__(self, ctrl: int = 0) -> None:
        self.out = bytearray()
        self.tx, self.rx, self.overflow, self.combined = Line(), Line(), Line(), Line()
        self.dev = CmsdkUart("uart0", self.out.append, self.tx, self.rx, self.overflow, self.combined)
        if ctrl:
            self.dev.write(CTRL, 4, ctrl)


def test_reset_registers_and_ids() -> None:
    uart = Uart().dev
    assert uart.name == "uart0"
    assert [uart.read(off, 4) for off in (STATE, CTRL, INTSTATUS, BAUDDIV)] == [0, 0, 0, 0]
    ids = [uart.read(off, 4) for off in range(PID4, CID3 + 4, 4)]
    assert ids == [0x04, 0, 0, 0, 0x21, 0xB8, 0x1B, 0, 0x0D, 0xF0, 0x05, 0xB1]  # as QEMU reads them
    assert uart.read(0x14, 4) == 0 and uart.read(0x800, 4) == 0  # bad offsets read 0


def test_transmit_with_tx_enabled_sends_at_once() -> None:
    uart = Uart(CTRL_TX_EN)
    for byte in b"hi":
        uart.dev.write(DATA, 4, byte)
    assert bytes(uart.out) == b"hi"
    assert uart.dev.read(STATE, 4) == 0  # TXFULL clear again: the byte left
    uart.dev.write(DATA, 4, 0x1FF)
    assert uart.out[-1] == 0xFF


def test_transmit_without_tx_enable_holds_the_byte_for_ever_like_qemu() -> None:
    """QEMU 7.2 (measured): the byte stays with TXFULL set, enabling TX does not send it, the next write overruns."""
    uart = Uart()
    uart.dev.write(DATA, 4, 0x41)
    assert uart.out == b"" and uart.dev.read(STATE, 4) == STATE_TXFULL
    uart.dev.write(CTRL, 4, CTRL_TX_EN)
    assert uart.out == b"" and uart.dev.read(STATE, 4) == STATE_TXFULL
    uart.dev.write(DATA, 4, 0x42)
    assert uart.out == b"" and uart.dev.read(STATE, 4) == STATE_TXFULL | STATE_TXOVERRUN
    assert uart.dev.txbuf == 0x42
    assert uart.dev.read(INTSTATUS, 4) == 0  # TXO_INTEN is clear


def test_tx_interrupt_on_send_and_w1c_clear() -> None:
    uart = Uart(CTRL_TX_EN | CTRL_TX_INTEN)
    assert not uart.tx.level
    uart.dev.write(DATA, 4, ord("a"))
    assert uart.dev.read(INTSTATUS, 4) == INT_TX
    assert uart.tx.level and uart.combined.level and not uart.rx.level
    uart.dev.write(INTSTATUS, 4, INT_TX)
    assert uart.dev.read(INTSTATUS, 4) == 0 and not uart.tx.level and not uart.combined.level


def test_receiver_takes_one_byte_only_when_enabled_and_empty() -> None:
    uart = Uart()
    assert uart.dev.rx_space() == 0  # RX disabled: QEMU's uart_can_receive says no
    assert uart.dev.receive(b"x") == 0
    uart.dev.write(CTRL, 4, CTRL_RX_EN)
    assert uart.dev.rx_space() == 1
    assert uart.dev.receive(b"xy") == 1
    assert uart.dev.read(STATE, 4) == STATE_RXFULL
    assert uart.dev.rx_space() == 0 and uart.dev.receive(b"y") == 0
    assert uart.dev.read(DATA, 4) == ord("x")
    assert uart.dev.read(STATE, 4) == 0 and uart.dev.rx_space() == 1
    assert uart.dev.read(DATA, 4) == ord("x")  # the holding register keeps its byte
    assert uart.dev.receive(b"") == 0


def test_rx_interrupt_stays_until_cleared_not_until_read() -> None:
    uart = Uart(CTRL_RX_EN | CTRL_RX_INTEN)
    uart.dev.receive(b"k")
    assert uart.rx.level and uart.dev.read(INTSTATUS, 4) == INT_RX
    assert uart.dev.read(DATA, 4) == ord("k")
    assert uart.rx.level  # reading DATA clears RXFULL only
    uart.dev.write(INTSTATUS, 4, INT_RX)
    assert not uart.rx.level


def test_rx_without_interrupt_enable_raises_nothing() -> None:
    uart = Uart(CTRL_RX_EN)
    uart.dev.receive(b"k")
    assert uart.dev.read(INTSTATUS, 4) == 0 and not uart.rx.level


def test_overrun_status_follows_state_and_enable_and_clears_through_intstatus() -> None:
    uart = Uart()
    uart.dev.write(DATA, 4, 1)
    uart.dev.write(DATA, 4, 2)  # TX disabled: held byte, then an overrun
    assert uart.dev.read(STATE, 4) == STATE_TXFULL | STATE_TXOVERRUN
    assert not uart.overflow.level
    uart.dev.write(CTRL, 4, CTRL_TXO_INTEN)
    assert uart.dev.read(INTSTATUS, 4) == INT_TXO and uart.overflow.level
    uart.dev.write(CTRL, 4, 0)
    assert uart.dev.read(INTSTATUS, 4) == 0 and not uart.overflow.level  # not latched: STATE & CTRL
    uart.dev.write(CTRL, 4, CTRL_TXO_INTEN | CTRL_RXO_INTEN)
    uart.dev.write(INTSTATUS, 4, INT_TXO)  # clearing TXO clears STATE.TXOVERRUN
    assert uart.dev.read(STATE, 4) == STATE_TXFULL and not uart.overflow.level


def test_state_overrun_bits_are_w1c_and_full_bits_read_only() -> None:
    uart = Uart()
    uart.dev.load(CmsdkUartState(STATE_TXFULL | STATE_RXFULL | STATE_TXOVERRUN | STATE_RXOVERRUN, 0, 0, 0, 0, 0))
    uart.dev.write(STATE, 4, 0xF)
    assert uart.dev.read(STATE, 4) == STATE_TXFULL | STATE_RXFULL


def test_rx_overrun_interrupt() -> None:
    uart = Uart(CTRL_RXO_INTEN)
    uart.dev.load(replace(uart.dev.save(), state=STATE_RXOVERRUN, intstatus=INT_RXO))
    uart.dev.write(CTRL, 4, CTRL_RXO_INTEN)
    assert uart.overflow.level and uart.combined.level
    uart.dev.write(INTSTATUS, 4, INT_RXO)
    assert uart.dev.read(STATE, 4) == 0 and not uart.overflow.level


def test_ctrl_and_bauddiv_masks() -> None:
    uart = Uart().dev
    uart.write(CTRL, 4, 0xFFFF_FFFF)
    uart.write(BAUDDIV, 4, 0xFFFF_FFFF)
    assert uart.read(CTRL, 4) == 0x7F and uart.read(BAUDDIV, 4) == 0xFFFFF


def test_peek_refuses_data_only() -> None:
    uart = Uart(CTRL_RX_EN).dev
    uart.receive(b"z")
    assert uart.peek(DATA, 4) is None
    assert uart.read(STATE, 4) == STATE_RXFULL  # the peek changed nothing
    assert uart.peek(STATE, 4) == STATE_RXFULL and uart.peek(CTRL, 4) == CTRL_RX_EN and uart.peek(PID4, 4) == 4


def test_unwired_optional_lines() -> None:
    out = bytearray()
    uart = CmsdkUart("uart3", out.append, Line(), Line())
    uart.write(CTRL, 4, CTRL_TX_EN | CTRL_TXO_INTEN)
    uart.write(DATA, 4, 7)
    assert out == b"\x07" and uart.name == "uart3"


# -- state -------------------------------------------------------------------------------------------


def test_public_attributes_are_the_state_fields() -> None:
    uart = Uart().dev
    assert {k for k in vars(uart) if not k.startswith("_")} == {f.name for f in fields(CmsdkUartState)}
    assert all(callable(v) for k, v in vars(uart).items() if k.startswith("_"))


def test_save_load_round_trip_and_encoding() -> None:
    source = Uart(CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INTEN | CTRL_TX_INTEN)
    source.dev.write(BAUDDIV, 4, 217)
    source.dev.write(DATA, 4, 0x33)
    source.dev.receive(b"q")
    state = source.dev.save()
    assert decode_fields(CmsdkUartState, encode_fields(state)) == state
    target = Uart()
    target.dev.load(state)
    assert target.dev.save() == state
    assert target.tx.levels == [] and target.rx.levels == []  # loading drives no line
    assert {k for k in vars(target.dev) if not k.startswith("_")} == {f.name for f in fields(CmsdkUartState)}
    assert target.dev.read(DATA, 4) == ord("q")


@pytest.mark.parametrize(
    "bad",
    [
        {"state": 0x10},
        {"ctrl": 0x80},
        {"bauddiv": 1 << 20},
        {"txbuf": 256},
        {"rxbuf": -1},
        {"intstatus": INT_TXO},  # overrun status without STATE.TXOVERRUN and TXO_INTEN
        {"state": STATE_RXOVERRUN, "ctrl": CTRL_RXO_INTEN},  # ... and its converse
    ],
)
def test_load_refuses_malformed_state(bad: dict[str, int]) -> None:
    uart = Uart().dev
    good = uart.save()
    with pytest.raises(FieldError):
        uart.load(replace(good, **bad))
    assert uart.save() == good
    with pytest.raises(FieldError):
        uart.load("not a state")  # type: ignore[arg-type]
