"""machine/devices/pl011.py: the PL011 UART as QEMU 7.2's pl011 (FIFO, flags, interrupts, ID, state)."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from machine.devices.pl011 import (
    CR,
    DMACR,
    DR,
    FBRD,
    FIFO_DEPTH,
    FR,
    IBRD,
    ICR,
    IFLS,
    ILPR,
    IMSC,
    INT_RX,
    INT_TX,
    LCR_FEN,
    LCR_H,
    MIS,
    RIS,
    RSR_ECR,
    Pl011,
    Pl011State,
)
from machine.fields import FieldError, decode_fields, encode_fields
from tests.unit.lines import Line


def make_uart(fifo: bool = False) -> tuple[Pl011, bytearray, Line]:
    out = bytearray()
    irq = Line()
    uart = Pl011(out.append, irq)
    if fifo:
        uart.write(LCR_H, 4, LCR_FEN | 0x60)  # 8 bits, FIFOs on (what Linux writes)
    return uart, out, irq


def drain(uart: Pl011) -> bytes:
    data = bytearray()
    while not uart.read(FR, 4) & 0x10:
        data.append(uart.read(DR, 4))
    return bytes(data)


def test_reset_registers_as_qemu() -> None:
    uart, _, irq = make_uart()
    assert uart.read(FR, 4) == 0x90  # TXFE | RXFE
    assert uart.read(CR, 4) == 0x300  # TXE | RXE
    assert uart.read(IFLS, 4) == 0x12
    assert [uart.read(reg, 4) for reg in (LCR_H, IMSC, RIS, MIS, DMACR, IBRD, FBRD, ILPR, RSR_ECR)] == [0] * 9
    assert not irq.level


def test_id_registers_are_qemus_pl011_arm() -> None:
    uart, _, _ = make_uart()
    ids = [uart.read(0xFE0 + 4 * i, 4) for i in range(8)]
    assert ids == [0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1]


def test_transmit_is_immediate_and_raises_txris() -> None:
    uart, out, irq = make_uart()
    for byte in b"ok\n":
        uart.write(DR, 4, byte | 0x100)  # only the low byte goes out
    assert bytes(out) == b"ok\n"
    assert uart.read(FR, 4) & 0x80  # transmit FIFO always empty
    assert uart.read(RIS, 4) == INT_TX
    assert uart.read(MIS, 4) == 0 and not irq.level  # masked
    uart.write(IMSC, 4, INT_TX)
    assert irq.level and uart.read(MIS, 4) == INT_TX
    uart.write(ICR, 4, INT_TX)
    assert not irq.level and uart.read(RIS, 4) == 0
    uart.write(DR, 4, ord("x"))
    assert irq.level  # each transmitted byte raises it again


def test_without_fifo_one_byte_is_held() -> None:
    uart, _, _ = make_uart(fifo=False)
    assert uart.rx_space() == 1
    assert uart.receive(b"ab") == 1
    assert uart.rx_space() == 0
    assert uart.read(FR, 4) == 0xC0  # RXFF: the single slot is full; RXFE clear
    assert uart.read(DR, 4) == ord("a")
    assert uart.read(FR, 4) == 0x90
    assert uart.receive(b"b") == 1 and uart.read(DR, 4) == ord("b")


def test_fifo_keeps_sixteen_bytes_in_order_and_refuses_more() -> None:
    uart, _, _ = make_uart(fifo=True)
    data = bytes(range(0x41, 0x41 + 20))
    assert uart.rx_space() == FIFO_DEPTH
    assert uart.receive(data) == FIFO_DEPTH
    assert uart.rx_space() == 0 and uart.receive(b"z") == 0
    assert uart.read(FR, 4) == 0xC0
    assert uart.read(DR, 4) == data[0]
    assert uart.read(FR, 4) == 0x80  # neither full nor empty
    assert drain(uart) == data[1:FIFO_DEPTH]


def test_fifo_ring_wraps_around() -> None:
    uart, _, _ = make_uart(fifo=True)
    uart.receive(b"0123456789")
    assert drain(uart) == b"0123456789"
    uart.receive(b"abcdefghijklmnop")  # 16 more: slots 10..15 then 0..9
    assert drain(uart) == b"abcdefghijklmnop"


def test_empty_dr_returns_the_stale_slot_like_qemu() -> None:
    uart, _, _ = make_uart(fifo=False)
    uart.receive(b"q")
    assert uart.read(DR, 4) == ord("q")
    assert uart.read(DR, 4) == ord("q")  # QEMU reads read_fifo[read_pos] even when empty
    assert uart.rx_space() == 1 and uart.read(FR, 4) == 0x90


def test_fen_change_flushes_the_receiver() -> None:
    uart, _, _ = make_uart(fifo=True)
    uart.receive(b"abc")
    uart.write(LCR_H, 4, 0x60)  # FIFO off
    assert uart.read(FR, 4) == 0x90 and uart.rx_space() == 1
    uart.receive(b"d")
    uart.write(LCR_H, 4, 0x60)  # FEN unchanged: nothing flushed
    assert uart.read(DR, 4) == ord("d")


def test_rx_interrupt_on_first_byte_and_cleared_when_emptied() -> None:
    uart, _, irq = make_uart(fifo=True)
    uart.write(IMSC, 4, INT_RX)
    assert not irq.level
    uart.receive(b"ab")
    assert irq.level and uart.read(RIS, 4) == INT_RX and uart.read(MIS, 4) == INT_RX
    uart.read(DR, 4)
    assert irq.level  # one byte left
    uart.read(DR, 4)
    assert not irq.level and uart.read(RIS, 4) == 0


def test_icr_clears_rx_until_the_fifo_empties_again() -> None:
    """QEMU raises RXRIS only when the count reaches its trigger (1), so a cleared RXRIS stays clear."""
    uart, _, irq = make_uart(fifo=True)
    uart.write(IMSC, 4, INT_RX | INT_TX)
    uart.receive(b"a")
    uart.write(ICR, 4, 0x7FF)
    assert not irq.level
    uart.receive(b"b")  # count 2: no new RX interrupt
    assert not irq.level
    drain(uart)
    uart.receive(b"c")
    assert irq.level


def test_registers_keep_what_is_written() -> None:
    """QEMU 7.2 stores these 32-bit registers unmasked (later QEMUs mask IBRD/FBRD)."""
    uart, _, _ = make_uart()
    values = {ILPR: 0x12, IBRD: 0x1234, FBRD: 0x56789, CR: 0x301, IFLS: 0x24, DMACR: 0x7}
    for reg, value in values.items():
        uart.write(reg, 4, value)
    assert {reg: uart.read(reg, 4) for reg in values} == values
    uart.write(FR, 4, 0)
    uart.write(RIS, 4, 0x30)
    assert uart.read(FR, 4) == 0x90 and uart.read(RIS, 4) == 0  # read-only


def test_narrow_and_wide_accesses() -> None:
    uart, _, _ = make_uart()
    uart.write(IBRD, 4, 0x1234)
    assert uart.read(IBRD, 1) == 0x34  # the low byte of the word, as QEMU's memory core
    assert uart.read(IBRD + 1, 1) == 0x34  # an unaligned byte reads the same word (offset >> 2)
    uart.write(IBRD, 1, 0xABCD)
    assert uart.read(IBRD, 4) == 0xCD
    uart.write(ILPR, 8, 0x0000_0042_0000_0007)  # ILPR and IBRD in one 64-bit write
    assert uart.read(ILPR, 8) == 0x42_0000_0007


def test_peek_answers_all_but_dr_without_side_effects() -> None:
    uart, _, _ = make_uart(fifo=True)
    uart.receive(b"xy")
    assert uart.peek(DR, 4) is None
    assert uart.peek(DR, 1) is None
    before = uart.save()
    for offset in range(4, 0x1000, 4):
        assert uart.peek(offset, 4) == uart.read(offset, 4)
    assert uart.save() == before


def test_save_load_round_trip_gives_the_same_behaviour() -> None:
    source, _, _ = make_uart(fifo=True)
    source.write(IMSC, 4, INT_RX)
    source.receive(b"hello world")
    source.read(DR, 4)
    state = source.save()
    assert decode_fields(Pl011State, encode_fields(state)) == state
    target, _, irq = make_uart()
    target.load(state)
    assert target.save() == state
    assert not irq.levels  # load drives no line
    assert drain(target) == drain(source) == b"ello world"
    assert target.receive(b"0123456789abcdefXYZ") == source.receive(b"0123456789abcdefXYZ") == 16
    assert target.save() == source.save()


def test_every_public_attribute_is_a_state_field() -> None:
    uart, _, _ = make_uart()
    assert {k for k in vars(uart) if not k.startswith("_")} == {f.name for f in fields(Pl011State)}
    assert all(callable(v) for k, v in vars(uart).items() if k.startswith("_"))


@pytest.mark.parametrize(
    "change",
    [
        {"fifo": bytes(15)},  # not 16 slots
        {"read_count": 2},  # FIFO off: one slot at most
        {"read_pos": 3},  # FIFO off: slot 0 only
        {"read_count": 17, "lcr": LCR_FEN},
        {"ris": 0x40},  # a bit QEMU never sets
        {"cr": 1 << 32},
        {"fifo": bytearray(16)},  # not bytes
    ],
)
def test_load_refuses_malformed_states(change: dict[str, object]) -> None:
    uart, _, _ = make_uart()
    good = uart.save()
    with pytest.raises(FieldError):
        uart.load(replace(good, **change))  # type: ignore[arg-type]
    assert uart.save() == good
    with pytest.raises(FieldError):
        uart.load(object())  # type: ignore[arg-type]
