"""Every guest through the real ``chronicorn run`` command: output, exit code, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import (
    GUEST_NAMES,
    XLENS_RV64_SLOW,
    expected_output,
    guest,
    guest_input,
    make_machine,
    run_cli,
    run_machine,
)

EXITING = [n for n in GUEST_NAMES if n != "fault"]


@pytest.mark.parametrize("xlen", XLENS_RV64_SLOW)
@pytest.mark.parametrize("name", EXITING)
def test_guest_output_and_exit_code(xlen: str, name: str) -> None:
    proc = run_cli("run", str(guest(xlen, name)), stdin=guest_input(name))
    assert proc.stdout == expected_output(xlen, name)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"Traceback" not in proc.stderr


@pytest.mark.parametrize("native", [True, False], ids=["native", "fallback"])
def test_fault_is_one_line_with_icount_pc_and_cause(xlen: str, native: bool) -> None:
    args = ["run", str(guest(xlen, "fault"))] + ([] if native else ["--no-native"])
    proc = run_cli(*args)
    assert proc.stdout == expected_output(xlen, "fault")
    assert proc.returncode == 3
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert "guest fault at icount" in lines[0] and "pc 0x" in lines[0]
    assert "load from unmapped memory 0x90000000" in lines[0]


def test_fault_pc_is_the_faulting_load(xlen: str) -> None:
    """The reported pc is the load itself (a compressed c.lw here), which has not retired."""
    import capstone

    run = run_machine(guest(xlen, "fault"))
    assert run.result.kind.label == "fault"
    mode = capstone.CS_MODE_RISCV32 if xlen == "rv32" else capstone.CS_MODE_RISCV64
    cs = capstone.Cs(capstone.CS_ARCH_RISCV, mode | capstone.CS_MODE_RISCVC)
    code = bytes(run.machine.uc.mem_read(run.result.pc, 4))
    insn = next(cs.disasm(code, run.result.pc, 1))
    assert insn.mnemonic in ("lw", "c.lw")
    # Stopping one instruction earlier lands on the same pc: the load had not retired.
    before = make_machine(guest(xlen, "fault"))
    assert before.run(run.result.icount).pc == run.result.pc


def test_max_insns_stops_exactly(xlen: str) -> None:
    proc = run_cli("run", str(guest(xlen, "compute")), "--max-insns", "123457")
    assert proc.returncode == 0
    assert b"stopped after 123457 instructions" in proc.stderr


@pytest.mark.parametrize("count", [4, 40, 16_600])
def test_trace_prints_every_instruction_once(xlen: str, count: int) -> None:
    """Mid-block limits, deferred MMIO accesses and emulated CSRs: each instruction once, none beyond."""
    proc = run_cli("run", str(guest(xlen, "hello")), "--trace", "--max-insns", str(count))
    lines = proc.stderr.decode().splitlines()
    trace = [ln for ln in lines if ln.startswith("[")]
    assert [int(ln[1 : ln.index("]")]) for ln in trace] == list(range(count))
    pcs = [ln.split()[2].rstrip(":") for ln in trace]
    assert pcs[0] == "0x00001000"  # QEMU's reset vector ROM runs first...
    if count > 6:
        assert pcs[6] == "0x80000000"  # ...and jumps to the image after 6 instructions
    assert all(len(ln.split()) >= 4 for ln in trace)  # icount, pc, bytes, mnemonic


def test_echo_uses_stdin(xlen: str) -> None:
    proc = run_cli("run", str(guest(xlen, "echo")), stdin=b"abc\nq")
    assert proc.stdout == b"echo ready\nABC\n\nbye\n"
    assert proc.returncode == 0


def test_echo_without_input_reports_idle_forever(xlen: str) -> None:
    proc = run_cli("run", str(guest(xlen, "echo")))
    assert proc.stdout == b"echo ready\n"
    assert proc.returncode == 4
    assert b"waits for input forever" in proc.stderr


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.elf", "cannot read guest image"),
        (lambda d: _write(d / "junk.bin", b"hello, not an elf"), "not an ELF file"),
        (lambda d: Path("/bin/true"), "not RISC-V"),
        (lambda d: _write(d / "short.elf", guest("rv32", "hello").read_bytes()[:100]), "not a valid ELF"),
    ],
)
def test_bad_image_is_one_clear_line_exit_2(tmp_path: Path, make, message: str) -> None:  # noqa: ANN001
    proc = run_cli("run", str(make(tmp_path)))
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_raw_binary_outside_ram_is_refused(tmp_path: Path) -> None:
    raw = _write(tmp_path / "raw.bin", b"\x13\x00\x00\x00" * 4)
    proc = run_cli("run", str(raw), "--load-addr", "0x1000", "--arch", "riscv32")
    assert proc.returncode == 2
    assert b"outside RAM" in proc.stderr


def test_raw_binary_runs_with_load_addr(tmp_path: Path) -> None:
    """A raw image: li a0,0x100000; lui a1,5; addi a1,a1,0x555; sw a1,0(a0) -> finisher pass."""
    code = bytes.fromhex("37051000b7550000938555552320b500")
    raw = _write(tmp_path / "raw.bin", code)
    proc = run_cli("run", str(raw), "--load-addr", "0x80000000", "--arch", "riscv64")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("run", str(raw), "--load-addr", "0x80000000")
    assert proc.returncode == 2 and b"--arch" in proc.stderr


def test_wrong_arch_option_for_elf(xlen: str) -> None:
    other = "riscv64" if xlen == "rv32" else "riscv32"
    proc = run_cli("run", str(guest(xlen, "hello")), "--arch", other)
    assert proc.returncode == 2 and b"ELF file but --arch" in proc.stderr


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_ctrl_c_stops_a_waiting_guest(xlen: str) -> None:
    """SIGINT while the guest idles for input: exit 130 with a message, no traceback."""
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    proc = subprocess.Popen(
        [sys.executable, "-m", "gdbstub.cli", "run", str(guest(xlen, "echo"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"echo ready\n"  # the guest is now waiting in wfi
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert b"interrupted at icount" in err and b"Traceback" not in err


@pytest.mark.parametrize("options", [["--ram", "64M"], ["--icount-shift", "0"], ["--icount-shift", "7"]])
def test_machine_options_do_not_change_guest_output(xlen: str, options: list[str]) -> None:
    """RAM size moves the device tree, the shift changes virtual time: output stays QEMU's."""
    proc = run_cli("run", str(guest(xlen, "timer")), *options)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == expected_output(xlen, "timer")


def test_icount_shift_changes_virtual_time(xlen: str) -> None:
    """The shift scales virtual time per instruction: the guest's output is unchanged, the clock is not."""
    from machine.inputs import ScriptedInputs
    from machine.loader import load_image
    from machine.machine import Machine, MachineConfig

    results = {}
    for shift in (0, 3, 7):
        out = bytearray()
        machine = Machine(
            load_image(guest(xlen, "timer")), ScriptedInputs(), out.append, MachineConfig(icount_shift=shift)
        )
        result = machine.run()
        assert bytes(out) == expected_output(xlen, "timer")
        results[shift] = (result.icount, machine.clock.ns(result.icount))
    assert len({ns for _, ns in results.values()}) == 3  # virtual time at exit differs with the shift


def test_trace_shows_the_handler_entry_of_every_trap(xlen: str) -> None:
    """A trap's first handler instruction shares the faulting instruction's icount; both are shown."""
    from machine.loader import load_image

    entry = load_image(guest(xlen, "traps")).symbols["trap_entry"]
    proc = run_cli("run", str(guest(xlen, "traps")), "--trace")
    assert proc.returncode == 0
    lines = [ln for ln in proc.stderr.decode().splitlines() if ln.startswith("[")]
    hits = [ln for ln in lines if int(ln.split()[2].rstrip(":"), 16) == entry]
    assert len(hits) == 5  # ecall, two illegal instructions, ebreak, load fault
    icounts = [int(ln[1 : ln.index("]")]) for ln in lines]
    assert icounts == sorted(icounts)


def test_device_tree_overlapping_the_image_is_refused(xlen: str) -> None:
    """QEMU refuses overlapping ROM regions; so do we, instead of overwriting the guest."""
    proc = run_cli("run", str(guest(xlen, "hello")), "--ram", "1M")
    assert proc.returncode == 2
    assert b"device tree" in proc.stderr and b"overlap" in proc.stderr
