"""The Arm boards: AArch64 ``virt`` and Cortex-M3 ``mps2-an385``. Every guest as on QEMU 7.2, exact icount,
record/replay, state round trips through the file encoding.

Guests: tests/guests/aarch64 (``qemu-system-aarch64 -M virt -cpu cortex-a72 -m 128M -kernel X``) and
tests/guests/cortexm (``qemu-system-arm -M mps2-an385 -semihosting-config enable=on,target=native -kernel X``).
"""

from __future__ import annotations

import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from machine.arch.registry import ARCHES
from machine.factory import make_machine
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import MachineConfig
from machine.results import RunKind
from machine.state import decode_state, encode_state
from tests.conftest import ROOT, require_tool, run_cli

GUESTS_ROOT = ROOT / "tests" / "guests"


@dataclass(frozen=True)
class Board:
    name: str
    directory: Path
    guests: dict[str, tuple[str | None, str, int]]  # name -> (stdin file, expected output file, exit code)
    qemu: tuple[str, ...]  # the QEMU command, the ELF appended
    interrupts: str  # a guest whose timer interrupts drive it

    def elf(self, guest: str) -> Path:
        return self.directory / "build" / f"{guest.split('-')[0]}.elf"

    def stdin(self, guest: str) -> bytes:
        path = self.guests[guest][0]
        return (self.directory / path).read_bytes() if path else b""

    def expected(self, guest: str) -> bytes:
        return (self.directory / "expected" / self.guests[guest][1]).read_bytes()


AARCH64 = Board(
    "aarch64",
    GUESTS_ROOT / "aarch64",
    {"hello": (None, "hello.out", 0), "timer": (None, "timer.out", 0), "echo": ("expected/echo.in", "echo.out", 0),
     "compute": (None, "compute.out", 0), "fault": (None, "fault.out", 0),
     "cmdbug-ok": ("inputs/cmdbug-ok.txt", "cmdbug-ok.out", 0),
     "cmdbug-bug": ("inputs/cmdbug-bug.txt", "cmdbug-bug.out", 0)},
    ("qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-m", "128M", "-display", "none", "-serial", "stdio",
     "-monitor", "none", "-kernel"),
    "timer",
)  # fmt: skip
CORTEXM = Board(
    "cortexm",
    GUESTS_ROOT / "cortexm",
    {"hello": (None, "hello.out", 0), "systick": (None, "systick.out", 0), "echo": ("expected/echo.in", "echo.out", 0),
     "pendsv": (None, "pendsv.out", 0), "hardfault": (None, "hardfault.out", 3), "compute": (None, "compute.out", 0),
     "itblock": (None, "itblock.out", 0), "cmdbug-ok": ("inputs/cmdbug-ok.txt", "cmdbug-ok.out", 0),
     "cmdbug-bug": ("inputs/cmdbug-bug.txt", "cmdbug-bug.out", 0)},
    ("qemu-system-arm", "-M", "mps2-an385", "-display", "none", "-serial", "stdio", "-monitor", "none",
     "-semihosting-config", "enable=on,target=native", "-kernel"),
    "systick",
)  # fmt: skip
BOARDS = {"aarch64": AARCH64, "cortexm": CORTEXM}
CASES = [(b.name, g) for b in BOARDS.values() for g in sorted(b.guests)]


def machine(board: Board, guest: str, out: bytearray, schedule: list[tuple[int, bytes]] | None = None):  # noqa: ANN201
    return make_machine(load_image(board.elf(guest)), ScriptedInputs(0, schedule), out.append)


@pytest.mark.parametrize(("board", "guest"), [pytest.param(b, g, marks=[pytest.mark.slow] if b == "aarch64" and g not in
                                                            ("hello", "timer", "fault") else []) for b, g in CASES])
def test_uart_output_and_exit_code_are_qemus(board: str, guest: str) -> None:
    """``chronicorn run`` prints what QEMU printed (expected/, recorded from QEMU 7.2) and exits as QEMU did."""
    b = BOARDS[board]
    ours = run_cli("run", str(b.elf(guest)), stdin=b.stdin(guest))
    assert ours.returncode == b.guests[guest][2], ours.stderr
    assert ours.stdout == b.expected(guest)


@pytest.mark.qemu
@pytest.mark.parametrize(("board", "guest"),
                         [pytest.param(b, g, marks=[] if g == "hello" else [pytest.mark.slow]) for b, g in CASES])
def test_same_uart_output_as_qemu_itself(board: str, guest: str) -> None:
    """The same ELF on QEMU now, not only its recorded transcript: same output, same exit status."""
    b = BOARDS[board]
    require_tool(shutil.which(b.qemu[0]), f"{b.qemu[0]} not installed (apt-get install qemu-system-arm)")
    theirs = subprocess.run([*b.qemu, str(b.elf(guest))], input=b.stdin(guest), capture_output=True, timeout=180)
    ours = run_cli("run", str(b.elf(guest)), stdin=b.stdin(guest))
    assert ours.stdout == theirs.stdout and ours.stdout
    assert ours.returncode == theirs.returncode


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_a_run_cut_anywhere_resumes_to_the_same_end(board: str) -> None:
    """Exact icount: a run stopped at any icount (landing inside blocks, and on Cortex-M next to IT blocks) and
    resumed ends at the same icount, pc and state digest as an uninterrupted run."""
    b = BOARDS[board]
    guest = "itblock" if board == "cortexm" else "compute"
    whole_out = bytearray()
    whole = machine(b, guest, whole_out)
    end = whole.run()
    assert end.kind == RunKind.EXITED
    rng = random.Random(7)
    for cut in (1, 17, *(rng.randrange(1, end.icount) for _ in range(4)), end.icount - 1):
        out = bytearray()
        m = machine(b, guest, out)
        first = m.run(cut)
        assert (first.kind, first.icount) == (RunKind.LIMIT, cut)
        rest = m.run()
        assert (rest.kind, rest.icount, rest.pc, bytes(out)) == (end.kind, end.icount, end.pc, bytes(whole_out))
        assert m.digest() == whole.digest()


def test_single_steps_through_it_blocks_keep_their_semantics() -> None:
    """Cortex-M: 300 single steps through the IT-block loop (each IT block retires as one instruction, as Unicorn
    executes it), then on to the end: the same checksum, icount and digest as one run."""
    whole_out = bytearray()
    whole = machine(CORTEXM, "itblock", whole_out)
    end = whole.run()
    out = bytearray()
    m = machine(CORTEXM, "itblock", out)
    m.run(33000)
    for _ in range(300):
        assert m.run(m.icount + 1).icount == m.icount
    rest = m.run()
    assert (rest.icount, bytes(out), m.digest()) == (end.icount, bytes(whole_out), whole.digest())


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_timer_interrupts_land_at_the_same_icounts_in_every_run(board: str) -> None:
    b = BOARDS[board]
    results = set()
    for _ in range(2):
        m = machine(b, b.interrupts, bytearray())
        result = m.run()
        assert result.kind == RunKind.EXITED
        results.add((result.icount, m.digest()))
    assert len(results) == 1


@pytest.mark.parametrize(("board", "guest", "cut"), [("aarch64", "timer", 3000), ("cortexm", "systick", 3000),
                                                      ("cortexm", "pendsv", 20500)])  # fmt: skip
def test_state_round_trip_through_a_file_resumes_identically(board: str, guest: str, cut: int) -> None:
    """A state taken mid-run (inside interrupt traffic; pendsv: a task on PSP, unprivileged), encoded, decoded
    into a fresh machine and run on gives the same end as the original run."""
    b = BOARDS[board]
    original = machine(b, guest, bytearray())
    original.run(cut)
    blob = encode_state(original.save_state(), original.arch, original.uc)
    end = original.run()
    fresh = machine(b, guest, bytearray())
    fresh.restore_state(decode_state(blob, fresh))  # type: ignore[arg-type]
    again = fresh.run()
    assert (again.kind, again.icount, again.pc) == (end.kind, end.icount, end.pc)
    assert fresh.digest() == original.digest()


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_uart_input_at_exact_icounts_reaches_the_echo_guest(board: str) -> None:
    """Scripted UART input enters at its icount through the UART's receive interrupt."""
    out = bytearray()
    m = machine(BOARDS[board], "echo", out, schedule=[(20000, b"abc\n"), (40000, b"q")])
    assert m.run().kind == RunKind.EXITED
    assert b"ABC" in out and out.endswith(b"bye\n")


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_record_then_replay_verifies(board: str, tmp_path: Path) -> None:
    """``record`` writes a recording; ``replay`` runs it again, checking every verification point."""
    b = BOARDS[board]
    rec = tmp_path / "echo.chron"
    recorded = run_cli("record", str(b.elf("echo")), "-o", str(rec), stdin=b.stdin("echo"))
    assert recorded.returncode == 0, recorded.stderr
    replayed = run_cli("replay", str(rec))
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout == b.expected("echo")
    info = run_cli("info", str(rec))
    assert info.returncode == 0, info.stderr
    assert ("aarch64" if board == "aarch64" else "mps2-an385").encode() in info.stdout


def test_an_image_of_another_architecture_is_refused() -> None:
    from machine.arm_virt import ArmVirtMachine
    from machine.mps2 import Mps2Machine

    riscv = GUESTS_ROOT / "riscv" / "build" / "rv64" / "hello.elf"
    with pytest.raises(Exception, match="aarch64"):
        ArmVirtMachine(load_image(riscv), ScriptedInputs(), lambda b: None)
    with pytest.raises(Exception, match="armv7m"):
        Mps2Machine(load_image(AARCH64.elf("hello")), ScriptedInputs(), lambda b: None)


@pytest.mark.qemu
def test_a_linux_image_boots_as_qemus_kernel_option_boots_it() -> None:
    """``--kernel Image`` alone on Arm virt is QEMU's ``-kernel`` of a raw arm64 Image: moved to RAM's base + its
    text_offset, entered through QEMU's boot stub with the device tree's address in x0 (Linux's boot protocol)."""
    require_tool(shutil.which("qemu-system-aarch64"), "qemu-system-aarch64 not installed (apt-get qemu-system-arm)")
    kimage = AARCH64.directory / "build" / "kimage.bin"
    theirs = subprocess.run([*AARCH64.qemu[:-1], "-kernel", str(kimage)], stdin=subprocess.DEVNULL,
                            capture_output=True, timeout=60)  # fmt: skip
    ours = run_cli("run", "--arch", "aarch64", "--kernel", str(kimage))
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout == b"kimage: started\nkimage: x0 points at a device tree\n"


def test_the_linux_boot_stub_passes_the_device_tree_in_x0() -> None:
    from unicorn import arm64_const as ac

    kimage = AARCH64.directory / "build" / "kimage.bin"
    m = make_machine(load_image(kimage, 0x4000_0000), ScriptedInputs(), bytearray().append,
                     MachineConfig(arch=ARCHES["aarch64"]))  # fmt: skip
    assert m.pc == 0x4000_0000  # QEMU's stub at RAM's base
    assert m.run(6).kind == RunKind.LIMIT  # ldr x0; mov x1-x3, xzr; ldr x4; br x4
    assert m.pc == 0x4008_0000  # the Image at RAM's base + text_offset (0x80000)
    dtb = int(m.uc.reg_read(ac.UC_ARM64_REG_X0))
    assert dtb == 0x4400_0000  # after where an initrd would go (64 MiB up for 128 MiB of RAM), 2 MiB aligned
    assert m.memory.read(dtb, 4) == bytes.fromhex("d00dfeed")
