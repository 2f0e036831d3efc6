"""Reverse debugging across virtio-blk requests: the virtioblk guest under gdb-multiarch, through ``chronicorn
serve GUEST --drive IMG`` and ``chronicorn replay REC --port`` of ``chronicorn record GUEST --drive IMG``.

A request completes at a logged input event: the boundary right after the guest's QueueNotify store. The
device's writes into guest RAM become visible as the instruction after that store executes (a watchpoint on
them stops as if that instruction had written them). Every stop is checked against what a plain forward run
(or the recording's event list) has at the same icount, and the disk image file never changes.
"""

from __future__ import annotations

import hashlib
import re
import signal
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from machine.dma import DriveConfig
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import Machine, MachineConfig
from tests.conftest import EXPECTED, GUESTS, XLENS_RV64_SLOW, guest, run_cli
from tests.e2e.gdb import Gdb, ServerProcess, require_gdb

# Each test takes about a second; the fast subset runs them on rv32 (as the other e2e tests).
pytestmark = [pytest.mark.gdb,
              pytest.mark.parametrize("source", ["serve", pytest.param("replay", marks=pytest.mark.slow)]),
              pytest.mark.parametrize("xlen", XLENS_RV64_SLOW)]  # fmt: skip

DISK = GUESTS / "inputs" / "disk.img"
SECTOR = 512
SLOT = 7  # the first drive's virtio-mmio slot, as on QEMU
QUEUE_NOTIFY = 80  # the register's offset (0x50), as the disassembly shows it
WORD = "*(unsigned int *)sector_buf"  # the first word of the buffer the device fills (sectors 0 and 1)


def transcript() -> bytes:
    """The guest's UART output: expected/virtioblk.out plus the line naming the slot and the (legacy) interface."""
    lines = (EXPECTED / "virtioblk.out").read_bytes().splitlines(keepends=True)
    return b"".join([lines[0], f"virtio-mmio slot {SLOT} version 1\n".encode(), *lines[1:]])


def write_pattern() -> bytes:
    """What the guest writes to sector 1 (write_pattern() in virtioblk.c)."""
    return bytes(((j * 7 + 0x42) ^ (j >> 8)) & 0xFF for j in range(SECTOR))


def le32(data: bytes) -> str:
    """The first word of ``data`` as gdb prints an unsigned int."""
    return str(int.from_bytes(data[:4], "little"))


ORIGINAL = DISK.read_bytes()
SECTOR0 = ORIGINAL[:SECTOR]


@dataclass(frozen=True)
class Recorded:
    """``chronicorn record GUEST -o REC --drive IMG`` and what ``chronicorn events REC`` lists."""

    path: Path
    completions: list[int]  # the IoCompletion icounts: read 0, write 1, flush, read 1, read 2-9
    end: int
    exit_code: int


@dataclass(frozen=True)
class Reference:
    """A fresh forward run of the machine with the drive (scripted inputs complete each notify at once)."""

    xlen: str

    def machine(self) -> Machine:
        config = MachineConfig(drives=(DriveConfig(str(DISK)),))
        return Machine(load_image(guest(self.xlen, "virtioblk")), ScriptedInputs(), lambda byte: None, config)

    def states(self, icounts: Iterable[int]) -> dict[int, tuple[list[int], bytes]]:
        """Registers (x0-x31, pc) and sector_buf at each icount."""
        machine = self.machine()
        buffer = int(load_symbol(self.xlen, "sector_buf"))
        states = {}
        try:
            for at in sorted(set(icounts)):
                machine.run(at)
                assert machine.icount == at
                states[at] = (machine.hart.registers()[:33], bytes(machine.uc.mem_read(buffer, SECTOR)))
        finally:
            machine.close()
        return states

    def pc_at(self, icount: int) -> int:
        return self.states([icount])[icount][0][32]


def load_symbol(xlen: str, name: str) -> int:
    image = load_image(guest(xlen, "virtioblk"))
    return image.symbols[name]


@dataclass
class Session:
    """A server with the drive (``overlay=OUT``: the disk where gdb leaves the guest) and gdb connected."""

    xlen: str
    source: str
    recorded: Recorded
    overlay: Path
    server: ServerProcess
    gdb: Gdb
    reference: Reference = field(init=False)

    def __post_init__(self) -> None:
        self.reference = Reference(self.xlen)

    def icount(self) -> int:
        return self.gdb.icount()

    def buffer(self) -> bytes:
        return self.gdb.read_memory(load_symbol(self.xlen, "sector_buf"), SECTOR)

    def shown(self, command: str) -> bytes:
        """The bytes a CLI command (``x/16xb ...``, ``print/x ...``) shows, in order."""
        text = self.gdb.cli(command).text
        if command.startswith("x/"):
            text = "".join(line.split(":", 1)[1] for line in text.splitlines() if ":" in line)
        else:
            text = text.split("=", 1)[1]
        return bytes(int(value, 16) for value in re.findall(r"0x([0-9a-f]+)", text))

    def end(self) -> tuple[bytes, bytes, bytes]:
        """End gdb and the server as Ctrl-C would (the overlay is written); its output, stderr and the disk."""
        self.gdb.close()
        self.server.proc.send_signal(signal.SIGINT)
        self.server.proc.wait(timeout=60)
        out, err = self.server.stop()
        return out, err, self.overlay.read_bytes()


def parse_events(text: str) -> tuple[list[int], int, int]:
    completions = [int(found) for found in re.findall(r"^\s*(\d+)\s+IoCompletion\b", text, re.MULTILINE)]
    end = re.search(r"^\s*(\d+)\s+End\s+kind=<RunKind\.EXITED: \d+>, code=(\d+)", text, re.MULTILINE)
    assert end is not None, text
    return completions, int(end.group(1)), int(end.group(2))


@pytest.fixture(autouse=True)
def image_unchanged() -> Iterator[None]:
    """The image file is never written, whatever the guest and gdb do."""
    before = hashlib.sha256(DISK.read_bytes()).hexdigest()
    yield
    assert hashlib.sha256(DISK.read_bytes()).hexdigest() == before


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Recorded]:
    """One recording per XLEN for the module: ``record ... --drive disk.img`` and its events."""
    cache: dict[str, Recorded] = {}

    def record(xlen: str) -> Recorded:
        if xlen not in cache:
            path = tmp_path_factory.mktemp(f"blk-{xlen}") / "virtioblk.chrec"
            made = run_cli("record", str(guest(xlen, "virtioblk")), "-o", str(path), "--drive", str(DISK))
            assert made.returncode == 0, made.stderr
            assert made.stdout == transcript()
            listed = run_cli("events", str(path))
            assert listed.returncode == 0, listed.stderr
            completions, end, code = parse_events(listed.stdout.decode())
            assert len(completions) == 5 and code == 0  # read 0, write 1, flush, read 1, read 2-9
            cache[xlen] = Recorded(path, completions, end, code)
        return cache[xlen]

    return record


@pytest.fixture
def blk(xlen: str, source: str, recorder: Callable[[str], Recorded], tmp_path: Path) -> Iterator[Session]:
    """gdb on the virtioblk guest: ``serve ELF --drive IMG`` or ``replay REC --port`` (with the same drive)."""
    require_gdb()
    recorded = recorder(xlen)
    elf = guest(xlen, "virtioblk")
    overlay = tmp_path / "overlay.img"
    drive = ("--drive", f"{DISK},overlay={overlay}")
    target, command = (elf, "serve") if source == "serve" else (recorded.path, "replay")
    server = ServerProcess(target, *drive, command=command)
    gdb = Gdb(elf)
    session = Session(xlen, source, recorded, overlay, server, gdb)
    try:
        gdb.connect(server.port)
        gdb.mi("-gdb-set print repeats unlimited")
        yield session
    finally:
        gdb.close()
        server.stop()


def at_the_end(session: Session, stopped_console: str) -> None:
    """The end of history after running forward: the guest's exit (serve), the recording's end (replay)."""
    gdb = session.gdb
    assert session.icount() == session.recorded.end
    assert "No more reverse-execution history" in stopped_console
    if session.source == "serve":
        assert "guest exited with code 0" in stopped_console
    assert gdb.location().function == "wfi"  # where the guest waits after the finisher's exit


@pytest.mark.slow  # (the fast subset keeps one of each kind: README, "Tests")
def test_reverse_continue_between_requests_then_forward_to_the_end(blk: Session) -> None:
    gdb, completions = blk.gdb, blk.recorded.completions
    gdb.break_at("blk_request")
    hits = []
    for _ in range(3):
        assert gdb.cont().reason.value == "breakpoint-hit"
        hits.append(blk.icount())
    for expected in reversed(hits[:-1]):  # the 2nd request, then the 1st
        stop = gdb.cont(reverse=True)
        assert stop.reason.value == "breakpoint-hit" and stop.location.function == "blk_request"
        assert blk.icount() == expected
    gdb.break_at("main")
    stop = gdb.cont(reverse=True)  # back to before the first request's completion (main's entry)
    assert stop.location.function == "main" and blk.icount() < hits[0]
    assert blk.buffer() == bytes(SECTOR)
    again = []
    while (stop := gdb.cont()).reason.value == "breakpoint-hit":  # forward: replayed, then (serve) live
        again.append(blk.icount())
    assert again[:3] == hits and len(again) == 5
    assert all(a < c < b for a, c, b in zip(again, completions, [*again[1:], blk.recorded.end], strict=True))
    at_the_end(blk, stop.console)
    assert blk.buffer() == write_pattern()  # the last thing read into sector_buf: sector 1, read back
    out, err, disk = blk.end()
    assert out == transcript(), err  # each line once, in order: nothing printed twice going forward again
    assert b"diverged" not in err
    # The disk where the guest ended: sector 1 written, the rest the image's.
    assert disk[SECTOR : 2 * SECTOR] == write_pattern()
    assert disk[:SECTOR] == ORIGINAL[:SECTOR] and disk[2 * SECTOR :] == ORIGINAL[2 * SECTOR :]


@pytest.mark.slow  # (the fast subset keeps one of each kind: README, "Tests")
def test_read_buffer_shows_the_disk_after_the_completion_and_its_old_contents_before(blk: Session) -> None:
    gdb, reference = blk.gdb, blk.reference
    completion = blk.recorded.completions[0]  # read sector 0 into sector_buf
    notify_pc, after_pc = reference.pc_at(completion - 1), reference.pc_at(completion)
    gdb.break_at("blk_request")
    gdb.cont()
    gdb.cont()  # the second request: the first one's data is in sector_buf
    assert blk.icount() > completion
    assert blk.buffer() == SECTOR0
    assert blk.shown("print/x sector_buf[0]@16") == SECTOR0[:16]
    assert blk.shown("x/16xb sector_buf") == SECTOR0[:16]
    assert gdb.evaluate(WORD) == le32(SECTOR0)
    gdb.delete()
    gdb.break_at(f"*{after_pc:#x}")  # the instruction after the notifying store
    stop = gdb.cont(reverse=True)
    assert stop.reason.value == "breakpoint-hit" and blk.icount() == completion
    assert blk.buffer() == bytes(SECTOR)  # the completion is not visible yet
    assert blk.shown("x/16xb sector_buf") == bytes(16)
    stop = gdb.stepi(reverse=True)
    assert blk.icount() == completion - 1 and stop.location.pc == notify_pc
    assert blk.buffer() == bytes(SECTOR)
    gdb.stepi()
    assert blk.icount() == completion  # (what it shows here: test_one_state_at_the_completion_icount...)
    gdb.stepi()  # over the instruction the data appears with
    assert blk.icount() == completion + 1 and blk.buffer() == SECTOR0
    assert blk.shown("print/x sector_buf[0]@16") == SECTOR0[:16]
    gdb.stepi(reverse=True)
    assert blk.icount() == completion and blk.buffer() == bytes(SECTOR)
    gdb.delete()
    stop = gdb.step(reverse=True)
    assert blk.icount() < completion and stop.location.function in ("blk_request", "wr")
    assert blk.buffer() == bytes(SECTOR) and gdb.evaluate(WORD) == "0"
    gdb.break_at("blk_request")
    assert gdb.cont().reason.value == "breakpoint-hit"  # forward again: the second request
    assert blk.icount() > completion and blk.buffer() == SECTOR0
    assert blk.shown("x/16xb sector_buf") == SECTOR0[:16]
    states = reference.states([blk.icount()])
    assert list(gdb.registers().values()) == states[blk.icount()][0]


@pytest.mark.slow  # (the fast subset keeps one of each kind: README, "Tests")
def test_going_back_across_the_write_then_forward_reads_back_the_written_data(blk: Session) -> None:
    gdb, recorded = blk.gdb, blk.recorded
    write, read_back = recorded.completions[1], recorded.completions[3]
    stop = gdb.cont()
    at_the_end(blk, stop.console)  # the whole run first (serve: live)
    assert blk.buffer() == write_pattern()
    gdb.break_at("blk_request", condition="type == 1")  # VIRTIO_BLK_T_OUT: the write of sector 1
    stop = gdb.cont(reverse=True)
    assert stop.reason.value == "breakpoint-hit" and blk.icount() < write
    assert '"write sector 1"' in gdb.evaluate("name")
    gdb.delete()
    # The next read: the read-back. (Not "sector == 1": gdb 13.1 evaluating rv32's 64-bit sector parameter in a
    # breakpoint condition dies of an internal error, "Should not be able to create a lazy value with an
    # enclosing type" (dwarf2/expr.c:165), against QEMU's gdbstub as well.)
    gdb.break_at("blk_request", condition="type == 0")
    assert gdb.cont().reason.value == "breakpoint-hit"
    assert write < blk.icount() < read_back and '"read sector 1"' in gdb.evaluate("name")
    assert blk.buffer() == bytes(SECTOR)  # the guest cleared it before reading back
    gdb.delete()
    gdb.watch(WORD)
    stop = gdb.cont()  # the device fills sector_buf from the (replayed) write
    assert stop.reason.value == "watchpoint-trigger" and blk.icount() == read_back + 1
    assert (stop.old_value, stop.new_value) == ("0", le32(write_pattern()))
    assert blk.buffer() == write_pattern()
    gdb.delete()
    stop = gdb.cont()
    at_the_end(blk, stop.console)  # the same end again
    assert blk.buffer() == write_pattern()
    gdb.break_at("blk_request", condition="type == 1")
    assert gdb.cont(reverse=True).reason.value == "breakpoint-hit" and blk.icount() < write
    out, err, disk = blk.end()  # gdb leaves the guest before the write: the disk as it was then
    assert out == transcript(), err
    assert out.count(b"sector 1 readback ok\n") == 1
    assert disk == ORIGINAL


def test_watch_on_the_read_buffer_stops_at_the_completion_both_ways(blk: Session) -> None:
    gdb, reference = blk.gdb, blk.reference
    completions = blk.recorded.completions
    read0 = completions[0]
    states = reference.states([read0 - 1, read0, read0 + 1])
    notify_pc, after_pc, stepped_pc = (states[at][0][32] for at in (read0 - 1, read0, read0 + 1))
    assert re.match(rf"sw\s+zero,{QUEUE_NOTIFY}\(", gdb.instruction(notify_pc)), gdb.instruction(notify_pc)
    gdb.break_at("blk_request")
    gdb.cont()
    gdb.cont()  # after the read of sector 0
    gdb.delete()
    gdb.watch(WORD)
    stop = gdb.cont(reverse=True)
    assert stop.reason.value == "watchpoint-trigger"
    assert blk.icount() == read0 and stop.location.pc == after_pc  # just before the data became visible
    assert (stop.old_value, stop.new_value) == (le32(SECTOR0), "0")  # backward: "new" is the earlier value
    assert "Old value = " + le32(SECTOR0) in stop.console and "New value = 0" in stop.console
    assert blk.buffer() == bytes(SECTOR)
    stop = gdb.cont()  # forward over the same completion
    assert stop.reason.value == "watchpoint-trigger" and blk.icount() == read0 + 1
    assert stop.location.pc == stepped_pc  # gdb stepped over the instruction after the notifying store
    assert (stop.old_value, stop.new_value) == ("0", le32(SECTOR0)) and blk.buffer() == SECTOR0
    # Forward from before the read, with the same watchpoint: the guest's own clearing, then the read-back.
    stop = gdb.cont()
    assert stop.reason.value == "watchpoint-trigger" and stop.location.function == "main"
    assert completions[2] < blk.icount() < completions[3] and stop.new_value == "0"
    stop = gdb.cont()
    assert stop.reason.value == "watchpoint-trigger" and blk.icount() == completions[3] + 1
    assert stop.location.pc == stepped_pc and (stop.old_value, stop.new_value) == ("0", le32(write_pattern()))
    gdb.delete()
    gdb.break_at("main")
    gdb.cont(reverse=True)  # before every request
    gdb.delete()
    gdb.watch(WORD)
    stop = gdb.cont()
    assert stop.reason.value == "watchpoint-trigger" and blk.icount() == read0 + 1
    assert (stop.old_value, stop.new_value) == ("0", le32(SECTOR0))
    gdb.delete()
    # An access watchpoint sees the device's write too; a read watchpoint does not (nothing read it before).
    gdb.stepi(reverse=True)
    gdb.stepi(reverse=True)
    assert blk.icount() == read0 - 1
    gdb.watch(WORD, "access")
    stop = gdb.cont()
    assert stop.reason.value == "access-watchpoint-trigger" and blk.icount() == read0 + 1
    assert (stop.old_value, stop.new_value) == ("0", le32(SECTOR0))
    stop = gdb.cont()  # the guest's first read of it: the CRC
    assert stop.reason.value == "access-watchpoint-trigger" and stop.location.function == "crc32"
    gdb.delete()
    gdb.watch(WORD, "read")
    stop = gdb.cont(reverse=True)  # the CRC's read just stepped over
    assert stop.reason.value == "read-watchpoint-trigger" and stop.location.function == "crc32"
    assert blk.icount() > read0 + 1
    stop = gdb.cont(reverse=True)  # nothing read it before: the device's write is no read
    assert stop.reason.value == "no-history" and blk.icount() == 0
    assert blk.buffer() == bytes(SECTOR)


@pytest.mark.slow  # (the fast subset keeps one of each kind: README, "Tests")
def test_reverse_stepi_next_finish_in_blk_request_land_in_forward_states(blk: Session) -> None:
    gdb = blk.gdb
    completion = blk.recorded.completions[0]
    gdb.break_at("blk_request")
    gdb.cont()
    entry = blk.icount()
    gdb.delete()
    forward = [entry]
    while sum(at > completion for at in forward) < 3:  # line by line over the notify and its completion
        stop = gdb.next()
        assert stop.location.function == "blk_request" and blk.icount() > forward[-1]
        forward.append(blk.icount())
    for _ in range(4):
        gdb.stepi()
        forward.append(blk.icount())
    seen: list[tuple[str, int, list[int], bytes]] = []

    def note(command: str) -> int:
        here = blk.icount()
        seen.append((command, here, list(gdb.registers().values()), blk.buffer()))
        return here

    previous = blk.icount()
    for expected in reversed(forward[-5:-1]):
        gdb.stepi(reverse=True)
        assert note("reverse-stepi") == expected == previous - 1
        previous = expected
    crossed = False
    while previous > completion - 5:
        stop = gdb.next(reverse=True)
        assert stop.reason.value == "end-stepping-range" and stop.location.function == "blk_request"
        here = note("reverse-next")
        assert here < previous
        crossed |= here < completion <= previous
        previous = here
    assert crossed  # one reverse-next went back over the completion
    stop = gdb.finish(reverse=True)
    assert stop.location.function == "main"
    assert note("reverse-finish") == entry - 1  # at the call
    gdb.step()  # into blk_request again
    assert blk.icount() == entry and gdb.location().function == "blk_request"
    states = blk.reference.states(at for _, at, _, _ in seen)
    for command, at, registers, buffer in seen:
        assert (registers, buffer) == states[at], (command, at)
        assert buffer == (SECTOR0 if at > completion else bytes(SECTOR)), (command, at)


def test_one_state_at_the_completion_icount_whichever_way_it_is_reached(blk: Session) -> None:
    """The boundary where a read completes: reached going backward, stepping or continuing forward, seeking.

    The data appears with the instruction after the notifying store (a watchpoint stops just before it going
    backward, with the old contents, and a plain forward run to that icount has them too): every way of
    reaching that icount must show the same registers and the same buffer.
    """
    gdb = blk.gdb
    completion = blk.recorded.completions[0]
    registers, before = blk.reference.states([completion])[completion]
    after_pc = registers[32]
    assert before == bytes(SECTOR)  # a forward run of the machine, stopped at that icount
    gdb.break_at("blk_request")
    gdb.cont()
    gdb.cont()  # after the read of sector 0
    gdb.delete()
    seen: dict[str, tuple[int, list[int], bytes]] = {}

    def note(how: str) -> None:
        seen[how] = (blk.icount(), list(gdb.registers().values()), blk.buffer())

    gdb.break_at(f"*{after_pc:#x}")
    gdb.cont(reverse=True)
    note("reverse-continue to a breakpoint")
    gdb.stepi()
    gdb.stepi(reverse=True)
    note("stepi, reverse-stepi")
    gdb.stepi(reverse=True)
    gdb.stepi()
    note("reverse-stepi, stepi")
    gdb.seek(completion - 1)
    gdb.seek(completion)
    note("monitor seek from the icount before")
    gdb.break_at("main")
    gdb.cont(reverse=True)
    gdb.delete()
    gdb.break_at(f"*{after_pc:#x}")
    gdb.cont()
    note("continue to a breakpoint")
    observed = {how: (at, regs == registers, buffer[:16].hex()) for how, (at, regs, buffer) in seen.items()}
    assert observed == {how: (completion, True, before[:16].hex()) for how in seen}
