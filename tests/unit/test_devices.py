"""machine/devices: UART, PLIC, CLINT, RTC and test finisher register semantics (QEMU's models)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from machine.devices.clint import MSIP, MTIME, MTIMECMP, U64, Clint
from machine.devices.plic import CONTEXT_BASE, CONTEXT_STRIDE, ENABLE_BASE, ENABLE_STRIDE, PENDING_BASE, Plic
from machine.devices.rtc import ALARM_HIGH, ALARM_LOW, IRQ_ENABLED, TIME_HIGH, TIME_LOW, GoldfishRtc
from machine.devices.test_finisher import TestFinisher
from machine.devices.uart import (
    FCR_ENABLE,
    FIFO_SIZE,
    IER_DLM,
    IIR_FCR,
    LCR,
    LSR,
    MCR,
    MSR,
    RBR_THR_DLL,
    SCR,
    Uart16550,
)
from machine.fields import FieldError
from tests.unit.lines import Line

# ---------------------------------------------------------------------------- UART



def make_uart(fifo: bool = False) -> tuple[Uart16550, bytearray, Line]:
    """A UART as at reset, or with its FIFO enabled (FCR = 1)."""
    out = bytearray()
    irq = Line()
    uart = Uart16550(out.append, irq)
    if fifo:
        uart.write(IIR_FCR, 1, FCR_ENABLE)
    return uart, out, irq


def test_uart_without_fifo_holds_one_byte_like_qemu() -> None:
    """QEMU's can_receive: one byte in the holding register until the FIFO is enabled."""
    uart, _, _ = make_uart(fifo=False)
    assert uart.rx_space() == 1
    assert uart.receive(b"xy") == 1
    assert uart.rx_space() == 0
    assert uart.read(RBR_THR_DLL, 1) == ord("x")
    assert uart.rx_space() == 1


def test_uart_reset_registers() -> None:
    uart, _, irq = make_uart()
    assert uart.read(LSR, 1) == 0x60  # THRE | TEMT, no data
    assert uart.read(IIR_FCR, 1) == 0x01  # no interrupt, FIFO bits clear
    assert uart.read(IER_DLM, 1) == 0
    assert uart.read(MSR, 1) == 0xB0  # DCD | DSR | CTS, as QEMU with no modem
    assert uart.read(RBR_THR_DLL, 1) == 0  # empty FIFO reads 0
    assert not irq.level


def test_uart_transmit_calls_tx_and_keeps_thre() -> None:
    uart, out, _ = make_uart()
    for byte in b"hi\n":
        uart.write(RBR_THR_DLL, 1, byte)
    assert bytes(out) == b"hi\n"
    assert uart.read(LSR, 1) & 0x60 == 0x60
    uart.write(RBR_THR_DLL, 1, 0x1FF)
    assert out[-1] == 0xFF  # only the low byte goes out


def test_uart_lsr_data_ready_follows_fifo() -> None:
    uart, _, _ = make_uart(fifo=True)
    assert uart.receive(b"ab") == 2
    assert uart.read(LSR, 1) == 0x61
    assert uart.read(RBR_THR_DLL, 1) == ord("a")
    assert uart.read(LSR, 1) & 1 == 1
    assert uart.read(RBR_THR_DLL, 1) == ord("b")
    assert uart.read(LSR, 1) == 0x60


def test_uart_rx_fifo_holds_sixteen_bytes_in_order() -> None:
    uart, _, _ = make_uart(fifo=True)
    data = bytes(range(0x41, 0x41 + 20))
    assert uart.rx_space() == FIFO_SIZE == 16
    assert uart.receive(data) == 16
    assert uart.rx_space() == 0
    assert uart.receive(b"z") == 0
    got = bytes(uart.read(RBR_THR_DLL, 1) for _ in range(16))
    assert got == data[:16]
    assert uart.rx_space() == 16
    assert uart.read(LSR, 1) & 1 == 0


def test_uart_ier_keeps_low_four_bits() -> None:
    uart, _, _ = make_uart()
    uart.write(IER_DLM, 1, 0xFD)
    assert uart.read(IER_DLM, 1) == 0x0D


def test_uart_thre_interrupt_on_enable_and_cleared_by_iir_read() -> None:
    uart, _, irq = make_uart()
    uart.write(IER_DLM, 1, 0x02)  # THRI rising edge with THR empty: interrupt
    assert irq.level
    assert uart.read(IIR_FCR, 1) == 0x02
    assert not irq.level  # reading IIR that reported THRI clears it
    assert uart.read(IIR_FCR, 1) == 0x01
    uart.write(IER_DLM, 1, 0x02)  # no rising edge: stays clear
    assert uart.read(IIR_FCR, 1) == 0x01
    assert not irq.level


def test_uart_thre_interrupt_after_transmit() -> None:
    uart, _, irq = make_uart()
    uart.write(IER_DLM, 1, 0x02)
    uart.read(IIR_FCR, 1)
    assert not irq.level
    uart.write(RBR_THR_DLL, 1, ord("x"))  # sent at once: THR empty again
    assert irq.level
    assert uart.read(IIR_FCR, 1) == 0x02


def test_uart_thri_toggle_rearms_interrupt() -> None:
    """QEMU resamples THRE on a 0 -> 1 transition of IER.THRI (the Windows workaround)."""
    uart, _, irq = make_uart()
    uart.write(IER_DLM, 1, 0x02)
    uart.read(IIR_FCR, 1)
    uart.write(IER_DLM, 1, 0x00)
    assert not irq.level
    uart.write(IER_DLM, 1, 0x02)
    assert irq.level
    assert uart.read(IIR_FCR, 1) == 0x02


def test_uart_thre_pending_but_masked_gives_no_interrupt() -> None:
    uart, _, irq = make_uart()
    uart.write(RBR_THR_DLL, 1, ord("x"))
    assert uart.read(IIR_FCR, 1) == 0x01
    assert not irq.level


def test_uart_iir_rx_data_has_priority_over_thre() -> None:
    uart, _, irq = make_uart()
    uart.write(IER_DLM, 1, 0x03)
    uart.receive(b"k")
    assert irq.level
    assert uart.read(IIR_FCR, 1) == 0x04
    assert uart.read(IIR_FCR, 1) == 0x04  # reading IIR does not clear RDI, nor the hidden THRI
    assert uart.read(RBR_THR_DLL, 1) == ord("k")
    assert uart.read(IIR_FCR, 1) == 0x02  # THRI was still pending underneath
    assert uart.read(IIR_FCR, 1) == 0x01
    assert not irq.level


def test_uart_rx_interrupt_needs_ier_rdi() -> None:
    uart, _, irq = make_uart()
    uart.receive(b"q")
    assert not irq.level
    assert uart.read(IIR_FCR, 1) == 0x01
    uart.write(IER_DLM, 1, 0x01)
    assert irq.level
    uart.read(RBR_THR_DLL, 1)
    assert not irq.level


def test_uart_iir_fifo_bits_follow_fcr_enable() -> None:
    uart, _, _ = make_uart()
    uart.write(IIR_FCR, 1, 0x01)
    assert uart.read(IIR_FCR, 1) == 0xC1
    uart.write(IER_DLM, 1, 0x01)
    uart.receive(b"1")
    assert uart.read(IIR_FCR, 1) == 0xC4


def test_uart_fcr_clear_rx_empties_fifo_and_drops_irq() -> None:
    uart, _, irq = make_uart()
    uart.write(IIR_FCR, 1, 0x01)
    uart.write(IER_DLM, 1, 0x01)
    uart.receive(b"abc")
    assert irq.level
    uart.write(IIR_FCR, 1, 0x03)  # FIFO enable + clear RX
    assert uart.rx_space() == 16
    assert uart.read(LSR, 1) & 1 == 0
    assert not irq.level
    assert uart.read(IIR_FCR, 1) == 0xC1  # FIFO stays enabled; clear bit does not stick


def test_uart_fcr_enable_change_flushes_rx_like_qemu() -> None:
    """QEMU serial.c: a change of FCR.FE forces both FIFO resets ("make sure FIFOs get flushed")."""
    uart, _, _ = make_uart()
    uart.receive(b"stale")
    uart.write(IIR_FCR, 1, 0x01)  # FIFO off -> on, no explicit clear bit
    assert uart.read(LSR, 1) & 1 == 0
    assert uart.rx_space() == 16


def test_uart_dlab_switches_divisor_latch() -> None:
    uart, out, irq = make_uart()
    uart.write(IER_DLM, 1, 0x01)
    uart.write(LCR, 1, 0x83)
    uart.write(RBR_THR_DLL, 1, 0x03)  # DLL, not a transmit
    uart.write(IER_DLM, 1, 0x01)  # DLM, not IER
    assert out == bytearray()
    assert uart.read(RBR_THR_DLL, 1) == 0x03
    assert uart.read(IER_DLM, 1) == 0x01
    uart.receive(b"r")
    assert uart.read(RBR_THR_DLL, 1) == 0x03  # DLAB read does not pop the FIFO
    uart.write(LCR, 1, 0x03)
    assert uart.read(LCR, 1) == 0x03
    assert uart.read(IER_DLM, 1) == 0x01  # IER kept its value
    assert uart.read(RBR_THR_DLL, 1) == ord("r")
    uart.write(LCR, 1, 0x80)
    uart.write(IER_DLM, 1, 0x00)
    uart.write(LCR, 1, 0x00)
    assert uart.read(IER_DLM, 1) == 0x01
    assert not irq.level


def test_uart_mcr_scr_registers() -> None:
    uart, _, _ = make_uart()
    uart.write(MCR, 1, 0xFF)
    assert uart.read(MCR, 1) == 0x1F
    uart.write(SCR, 1, 0x5A)
    assert uart.read(SCR, 1) == 0x5A


def test_uart_peek_has_no_side_effects() -> None:
    uart, _, irq = make_uart(fifo=True)
    uart.write(IER_DLM, 1, 0x03)
    uart.receive(b"p")
    assert uart.peek(RBR_THR_DLL, 1) is None
    assert uart.peek(IIR_FCR, 1) is None
    assert uart.peek(LSR, 1) == 0x61
    assert uart.peek(IER_DLM, 1) == 0x03
    assert uart.peek(SCR, 1) == 0
    assert uart.rx_space() == 15
    assert irq.level


def test_uart_saved_state_covers_rx_fifo() -> None:
    a, _, _ = make_uart()
    b, _, _ = make_uart()
    assert a.save() == b.save()
    a.receive(b"x")
    assert a.save() != b.save()
    b.receive(b"y")
    assert a.save() != b.save()


# ---------------------------------------------------------------------------- PLIC


class Outputs:
    """Records the PLIC's per-context outputs."""

    def __init__(self) -> None:
        self.level = [False, False]
        self.calls: list[tuple[int, bool]] = []

    def __call__(self, ctx: int, level: bool) -> None:
        self.level[ctx] = level
        self.calls.append((ctx, level))


def make_plic() -> tuple[Plic, Outputs]:
    out = Outputs()
    return Plic(out), out


def plic_with_uart_source(ctx: int = 0) -> tuple[Plic, Outputs, Callable[[bool], None]]:
    """A PLIC with source 10 at priority 1, enabled for ``ctx``, and that source's line."""
    plic, out = make_plic()
    plic.write(4 * 10, 4, 1)
    plic.write(enable_reg(ctx), 4, 1 << 10)
    return plic, out, plic.line(10)


def claim_reg(ctx: int) -> int:
    return CONTEXT_BASE + ctx * CONTEXT_STRIDE + 4


def threshold_reg(ctx: int) -> int:
    return CONTEXT_BASE + ctx * CONTEXT_STRIDE


def enable_reg(ctx: int, word: int = 0) -> int:
    return ENABLE_BASE + ctx * ENABLE_STRIDE + 4 * word


def test_plic_priority_registers() -> None:
    plic, _ = make_plic()
    plic.write(4 * 10, 4, 5)
    plic.write(4 * 95, 4, 0xF)
    assert plic.read(4 * 10, 4) == 5
    assert plic.read(4 * 95, 4) == 7  # 3 priority bits
    assert plic.read(4 * 11, 4) == 0


def test_plic_enable_registers_per_context() -> None:
    plic, _ = make_plic()
    plic.write(enable_reg(0), 4, 1 << 10 | 1)
    plic.write(enable_reg(1, 1), 4, 1 << 3)
    assert plic.read(enable_reg(0), 4) == 1 << 10  # source 0 does not exist
    assert plic.read(enable_reg(1), 4) == 0
    assert plic.read(enable_reg(1, 1), 4) == 1 << 3
    assert plic.enable[1][35] and not plic.enable[0][35]


def test_plic_line_drives_only_enabled_contexts() -> None:
    plic, out = make_plic()
    plic.write(4 * 10, 4, 1)
    plic.write(enable_reg(1), 4, 1 << 10)
    plic.line(10)(True)
    assert out.level == [False, True]
    assert plic.read(PENDING_BASE, 4) == 1 << 10
    plic.write(enable_reg(0), 4, 1 << 10)
    assert out.level == [True, True]


def test_plic_priority_zero_never_interrupts() -> None:
    plic, out = make_plic()
    plic.write(enable_reg(0), 4, 1 << 10)
    plic.line(10)(True)
    assert out.level == [False, False]
    assert plic.read(claim_reg(0), 4) == 0


def test_plic_threshold_masks_lower_or_equal_priorities() -> None:
    plic, out = make_plic()
    plic.write(4 * 10, 4, 3)
    plic.write(enable_reg(0), 4, 1 << 10)
    plic.write(threshold_reg(0), 4, 3)
    plic.line(10)(True)
    assert plic.read(threshold_reg(0), 4) == 3
    assert not out.level[0]
    assert plic.read(claim_reg(0), 4) == 0
    plic.write(threshold_reg(0), 4, 2)
    assert out.level[0]
    assert plic.read(claim_reg(0), 4) == 10


def test_plic_claim_returns_highest_priority_and_clears_pending() -> None:
    plic, out = make_plic()
    for src, prio in ((3, 2), (10, 6), (40, 4), (11, 6)):
        plic.write(4 * src, 4, prio)
    plic.write(enable_reg(0), 4, 1 << 3 | 1 << 10 | 1 << 11)
    plic.write(enable_reg(0, 1), 4, 1 << (40 - 32))
    for src in (3, 10, 40, 11):
        plic.line(src)(True)
    assert plic.read(claim_reg(0), 4) == 10  # ties go to the lowest source id
    assert plic.read(PENDING_BASE, 4) & (1 << 10) == 0
    assert plic.read(claim_reg(0), 4) == 11
    assert plic.read(claim_reg(0), 4) == 40
    assert plic.read(claim_reg(0), 4) == 3
    assert not out.level[0]
    assert plic.read(claim_reg(0), 4) == 0


def test_plic_complete_repends_a_still_high_line() -> None:
    plic, out, line = plic_with_uart_source()
    line(True)
    assert plic.read(claim_reg(0), 4) == 10
    assert not out.level[0]
    line(True)  # device still asserting while claimed: no new request yet
    assert not out.level[0]
    plic.write(claim_reg(0), 4, 10)  # complete
    assert out.level[0]
    assert plic.read(claim_reg(0), 4) == 10


def test_plic_complete_of_a_low_line_does_not_repend() -> None:
    plic, out, line = plic_with_uart_source()
    line(True)
    assert plic.read(claim_reg(0), 4) == 10
    line(False)
    plic.write(claim_reg(0), 4, 10)
    assert not out.level[0]
    assert plic.read(PENDING_BASE, 4) == 0
    assert plic.read(claim_reg(0), 4) == 0


def test_plic_complete_of_unclaimed_source_is_ignored() -> None:
    plic, out, line = plic_with_uart_source()
    line(True)
    plic.write(claim_reg(0), 4, 10)
    assert plic.read(claim_reg(0), 4) == 10
    plic.write(claim_reg(0), 4, 200)  # out of range: ignored
    plic.write(claim_reg(0), 4, 0)
    assert plic.claimed[10]
    assert not out.level[0]


def test_plic_line_dropped_before_claim_stays_pending() -> None:
    """Debian's QEMU 7.2 (7.2.22: "hw/intc: Don't clear pending bits on IRQ lowering") keeps a source pending
    once its line rose, until a claim: a line that falls before the claim still gives the claim its source
    (measured with tests/guests/riscv/blkscript.c's "i 1" on QEMU: tests/integration/test_blkscript.py)."""
    plic, out, line = plic_with_uart_source()
    line(True)
    assert out.level[0]
    line(False)
    assert plic.read(PENDING_BASE, 4) == 1 << 10
    assert out.level[0]
    assert plic.read(claim_reg(0), 4) == 10
    assert plic.read(PENDING_BASE, 4) == 0 and not out.level[0]


def test_plic_contexts_are_independent() -> None:
    plic, out = make_plic()
    plic.write(4 * 10, 4, 2)
    plic.write(enable_reg(0), 4, 1 << 10)
    plic.write(enable_reg(1), 4, 1 << 10)
    plic.write(threshold_reg(1), 4, 5)
    plic.line(10)(True)
    assert out.level == [True, False]
    assert plic.read(claim_reg(1), 4) == 0
    assert plic.read(claim_reg(0), 4) == 10
    assert out.level == [False, False]
    assert out.calls[-2:] == [(0, False), (1, False)]


def test_plic_peek_does_not_claim() -> None:
    plic, out, line = plic_with_uart_source()
    line(True)
    assert plic.peek(claim_reg(0), 4) is None
    assert plic.peek(4 * 10, 4) == 1
    assert plic.peek(PENDING_BASE, 4) == 1 << 10
    assert out.level[0]


def test_plic_saved_state_changes_with_claims() -> None:
    plic, _, line = plic_with_uart_source()
    line(True)
    before = plic.save()
    plic.read(claim_reg(0), 4)
    assert plic.save() != before


# ---------------------------------------------------------------------------- CLINT


class Ticks:
    def __init__(self, now: int = 0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def make_clint(now: int = 0) -> tuple[Clint, Ticks, Line]:
    ticks = Ticks(now)
    irq = Line()
    return Clint(ticks, irq), ticks, irq


def write64(clint: Clint, offset: int, value: int) -> None:
    clint.write(offset, 4, value & 0xFFFFFFFF)
    clint.write(offset + 4, 4, value >> 32)


def test_clint_msip_drives_software_interrupt() -> None:
    clint, _, irq = make_clint()
    clint.write(MSIP, 4, 1)
    assert irq.level and clint.read(MSIP, 4) == 1
    clint.write(MSIP, 4, 0xFFFFFFFE)  # only bit 0 exists
    assert not irq.level and clint.read(MSIP, 4) == 0
    clint.write(MSIP, 4, 3)
    assert clint.read(MSIP, 4) == 1


def test_clint_mtimecmp_written_in_32_bit_halves() -> None:
    clint, _, _ = make_clint()
    assert clint.read(MTIMECMP, 4) == 0xFFFFFFFF  # reset: never
    clint.write(MTIMECMP, 4, 0x89ABCDEF)
    assert clint.mtimecmp == 0xFFFFFFFF_89ABCDEF
    clint.write(MTIMECMP + 4, 4, 0x01234567)
    assert clint.mtimecmp == 0x01234567_89ABCDEF
    assert clint.read(MTIMECMP, 4) == 0x89ABCDEF
    assert clint.read(MTIMECMP + 4, 4) == 0x01234567
    assert clint.read(MTIMECMP, 8) == 0x01234567_89ABCDEF
    clint.write(MTIMECMP, 8, 0x1122334455667788)
    assert clint.read(MTIMECMP, 8) == 0x1122334455667788


def test_clint_mtime_follows_now_ticks() -> None:
    clint, ticks, _ = make_clint(0x1_0000_0005)
    assert clint.read(MTIME, 4) == 5
    assert clint.read(MTIME + 4, 4) == 1
    assert clint.read(MTIME, 8) == 0x1_0000_0005
    ticks.now += 100
    assert clint.read(MTIME, 8) == 0x1_0000_0069
    assert clint.peek(MTIME, 4) is None
    assert clint.peek(MTIME + 4, 4) is None
    assert clint.peek(MTIMECMP, 4) == 0xFFFFFFFF


def test_clint_mtime_write_moves_offset() -> None:
    clint, ticks, _ = make_clint(1000)
    clint.write(MTIME, 4, 5000)
    assert clint.read(MTIME, 8) == 5000
    ticks.now += 7
    assert clint.read(MTIME, 8) == 5007
    clint.write(MTIME + 4, 4, 2)
    assert clint.read(MTIME, 8) == (2 << 32) | 5007
    assert clint.mtime(1007) == (2 << 32) | 5007


def test_clint_deadline_and_timer_pending() -> None:
    clint, _, _ = make_clint()
    assert clint.deadline_ticks() is None
    assert not clint.timer_pending(10**12)
    write64(clint, MTIMECMP, 500)
    assert clint.deadline_ticks() == 500
    assert not clint.timer_pending(499)
    assert clint.timer_pending(500)


def test_clint_deadline_after_mtime_moved_forward() -> None:
    clint, _, _ = make_clint(100)
    write64(clint, MTIME, 400)  # offset +300
    write64(clint, MTIMECMP, 1000)
    assert clint.deadline_ticks() == 700
    assert not clint.timer_pending(699)
    assert clint.timer_pending(700)


def test_clint_deadline_after_mtime_moved_backward() -> None:
    """Setting mtime below the clock makes the offset wrap modulo 2**64: the deadline must not."""
    clint, _, _ = make_clint(1000)
    write64(clint, MTIME, 0)
    write64(clint, MTIMECMP, 500)
    assert not clint.timer_pending(1000)
    assert clint.timer_pending(1500)
    assert clint.deadline_ticks() == 1500


@given(now=st.integers(0, 2**40), mtime=st.integers(0, 2**40), cmp=st.integers(0, 2**41))
def test_clint_deadline_agrees_with_timer_pending(now: int, mtime: int, cmp: int) -> None:
    """For every clock reading t >= now: timer_pending(t) <=> t >= deadline_ticks()."""
    clint, _, _ = make_clint(now)
    write64(clint, MTIME, mtime)
    write64(clint, MTIMECMP, cmp)
    deadline = clint.deadline_ticks()
    assert deadline is not None
    for t in {now, now + 1, deadline - 1, deadline, deadline + 1}:
        if t >= now:
            assert clint.timer_pending(t) == (t >= deadline), (t, deadline)


def test_clint_mtimecmp_all_ones_means_no_deadline() -> None:
    clint, _, _ = make_clint()
    write64(clint, MTIMECMP, 7)
    write64(clint, MTIMECMP, U64)
    assert clint.deadline_ticks() is None


def test_clint_saved_state_tracks_registers() -> None:
    a, _, _ = make_clint()
    b, _, _ = make_clint()
    write64(a, MTIMECMP, 9)
    assert a.save() != b.save()
    write64(b, MTIMECMP, 9)
    assert a.save() == b.save()


# ---------------------------------------------------------------------------- RTC


class HostClock:
    def __init__(self, ns: int) -> None:
        self.ns = ns
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        return self.ns


def test_rtc_time_low_latches_time_high() -> None:
    clock = HostClock(0x0000_0012_3456_789A)
    rtc = GoldfishRtc(clock)
    assert rtc.read(TIME_LOW, 4) == 0x3456_789A
    clock.ns = 0x0000_0099_0000_0000
    assert rtc.read(TIME_HIGH, 4) == 0x12  # latched at the TIME_LOW read
    assert rtc.read(TIME_LOW, 4) == 0
    assert rtc.read(TIME_HIGH, 4) == 0x99


def test_rtc_time_high_alone_does_not_sample_clock() -> None:
    clock = HostClock(5 << 32)
    rtc = GoldfishRtc(clock)
    assert rtc.read(TIME_HIGH, 4) == 0
    assert rtc.peek(TIME_HIGH, 4) == 0
    assert rtc.peek(TIME_LOW, 4) is None
    assert clock.reads == 0


def test_rtc_alarm_and_irq_enable_registers() -> None:
    rtc = GoldfishRtc(HostClock(0))
    rtc.write(ALARM_LOW, 4, 0xDEADBEEF)
    rtc.write(ALARM_HIGH, 4, 0x12)
    assert rtc.read(ALARM_LOW, 4) == 0xDEADBEEF
    assert rtc.read(ALARM_HIGH, 4) == 0x12
    rtc.write(IRQ_ENABLED, 4, 3)
    assert rtc.read(IRQ_ENABLED, 4) == 1


def test_rtc_guest_can_set_the_time() -> None:
    """QEMU's goldfish_rtc_write moves tick_offset on TIME_LOW/TIME_HIGH writes (Linux's set_time)."""
    clock = HostClock(1_000)
    rtc = GoldfishRtc(clock)
    rtc.write(TIME_HIGH, 4, 0x7)
    rtc.write(TIME_LOW, 4, 0x100)
    clock.ns += 50
    assert rtc.read(TIME_LOW, 4) == 0x100 + 50
    assert rtc.read(TIME_HIGH, 4) == 0x7


# ---------------------------------------------------------------------------- test finisher


def make_finisher() -> tuple[TestFinisher, list[int], list[str]]:
    exits: list[int] = []
    resets: list[str] = []
    return TestFinisher(exits.append, lambda: resets.append("reset")), exits, resets


@pytest.mark.parametrize(
    ("value", "code"),
    [(0x5555, 0), (0x3333, 0), (0x3333 | 1 << 16, 1), (0x3333 | 0xBEEF << 16, 0xBEEF), (0xFFFF_5555, 0)],
)
def test_finisher_exit_codes(value: int, code: int) -> None:
    fin, exits, resets = make_finisher()
    fin.write(0, 4, value)
    assert exits == [code]
    assert resets == []


def test_finisher_reset() -> None:
    fin, exits, resets = make_finisher()
    fin.write(0, 4, 0x7777)
    assert resets == ["reset"]
    assert exits == []


@pytest.mark.parametrize(("offset", "value"), [(0, 0x1234), (0, 0), (4, 0x5555), (8, 0x7777)])
def test_finisher_ignores_other_writes(offset: int, value: int) -> None:
    fin, exits, resets = make_finisher()
    fin.write(offset, 4, value)
    assert exits == [] and resets == []
    assert fin.read(0, 4) == 0 and fin.peek(0, 4) == 0


# ---------------------------------------------------------------------------- saved state


def busy_devices() -> list[tuple[object, Callable[[], object]]]:
    """Each device in a non-reset state, with a factory for a fresh one of its kind."""
    uart, _, _ = make_uart(fifo=True)
    uart.receive(b"abc")
    uart.write(SCR, 1, 0x5A)
    uart.write(LCR, 1, 0x83)
    uart.write(RBR_THR_DLL, 1, 7)
    plic, _, line = plic_with_uart_source(1)
    line(True)
    plic.write(threshold_reg(0), 4, 3)
    clint, _, _ = make_clint(now=50)
    write64(clint, MTIMECMP, 1234)
    write64(clint, MTIME, 7)  # a negative offset
    rtc = GoldfishRtc(HostClock(10**18))
    rtc.write(TIME_LOW, 4, 5)
    rtc.write(ALARM_HIGH, 4, 9)
    return [
        (uart, lambda: make_uart()[0]),
        (plic, lambda: make_plic()[0]),
        (clint, lambda: make_clint()[0]),
        (rtc, lambda: GoldfishRtc(HostClock(0))),
        (make_finisher()[0], lambda: make_finisher()[0]),
    ]


@pytest.mark.parametrize("index", range(5))
def test_load_gives_a_fresh_device_the_saved_state(index: int) -> None:
    device, fresh = busy_devices()[index]
    state = device.save()  # type: ignore[attr-defined]
    other = fresh()
    other.load(state)  # type: ignore[attr-defined]
    assert other.save() == state  # type: ignore[attr-defined]
    assert type(state).VERSION >= 1 and hash(state) is not None  # frozen, hashable: tuples inside


def test_loaded_uart_behaves_like_the_saved_one() -> None:
    uart, _, _ = make_uart(fifo=True)
    uart.receive(b"xyz")
    other, _, irq = make_uart()
    other.load(uart.save())
    assert [other.read(RBR_THR_DLL, 1) for _ in range(3)] == list(b"xyz")
    assert other.rx_space() == FIFO_SIZE and not irq.level  # the line is driven again by the next access


def test_saved_state_is_not_shared_with_the_device() -> None:
    plic, _, line = plic_with_uart_source()
    state = plic.save()
    line(True)
    plic.write(4 * 3, 4, 5)
    assert state != plic.save() and state.priority[3] == 0
    plic.load(state)
    assert plic.save() == state


BAD_STATES = [
    (lambda s: replace(s, rx=bytes(FIFO_SIZE + 1), fcr=FCR_ENABLE), "uart0", "rx"),
    (lambda s: replace(s, rx=b"ab", fcr=0), "uart0", "holding register"),
    (lambda s: replace(s, lcr=256), "uart0", "lcr"),
    (lambda s: replace(s, ier=0x10), "uart0", "ier"),
    (lambda s: replace(s, thr_ipending=1), "uart0", "thr_ipending"),
    (lambda s: replace(s, scr=True), "uart0", "scr"),
    (lambda s: replace(s, priority=s.priority[:-1]), "plic", "priority"),
    (lambda s: replace(s, priority=list(s.priority)), "plic", "priority"),
    (lambda s: replace(s, priority=(8,) + s.priority[1:]), "plic", "priority"),
    (lambda s: replace(s, enable=(s.enable[0],)), "plic", "enable"),
    (lambda s: replace(s, level=(0,) + s.level[1:]), "plic", "level"),
    (lambda s: replace(s, threshold=(0, -1)), "plic", "threshold"),
    (lambda s: replace(s, msip=2), "clint", "msip"),
    (lambda s: replace(s, mtimecmp=1 << 64), "clint", "mtimecmp"),
    (lambda s: replace(s, irq_enabled=3), "rtc", "irq_enabled"),
    (lambda s: replace(s, time_high=1 << 32), "rtc", "time_high"),
]


@pytest.mark.parametrize(("mutate", "name", "field"), BAD_STATES)
def test_load_refuses_invalid_states(mutate: Callable[[object], object], name: str, field: str) -> None:
    devices = {type(d).name: d for d, _ in busy_devices()}  # type: ignore[attr-defined]
    device = devices[name]
    before = device.save()  # type: ignore[attr-defined]
    with pytest.raises(FieldError, match=field):
        device.load(mutate(before))  # type: ignore[attr-defined]
    assert device.save() == before  # type: ignore[attr-defined]  # unchanged


def test_load_refuses_another_devices_state() -> None:
    uart, _, _ = make_uart()
    with pytest.raises(FieldError, match="UartState expected"):
        uart.load(make_clint()[0].save())  # type: ignore[arg-type]


@given(st.lists(st.tuples(st.sampled_from([0, 1, 2, 3, 4, 7]), st.integers(0, 255)), max_size=30),
       st.binary(max_size=20))  # fmt: skip
def test_uart_any_register_history_saves_and_loads(writes: list[tuple[int, int]], data: bytes) -> None:
    uart, _, _ = make_uart()
    for offset, value in writes:
        uart.write(offset, 1, value)
        uart.receive(data[:2])
        data = data[2:]
    state = uart.save()
    other, _, _ = make_uart()
    other.load(state)
    assert other.save() == state
    assert [other.peek(o, 1) for o in range(8)] == [uart.peek(o, 1) for o in range(8)]
