"""Probe guests (tests/guests/riscv/probes): chronicorn matches QEMU 7.2 register by register.

Each probe is a small rv32 assembly guest linked with ``probes/dump.S``, which prints s1..s9 as
hex lines on the UART and exits through the test finisher. ``probes/expected/NAME.out`` is
QEMU's output (``-icount shift=0``, recorded with ``make -C tests/guests/riscv record-probes``).
The probes print only values that are deterministic on QEMU: addresses, causes and counter
*differences*, never absolute counter readings (QEMU's include a startup bias).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from unicorn import riscv_const as rc

from machine.icount import NativeCounter, PythonCounter
from machine.machine import RunKind
from tests.conftest import GUESTS, require_tool, run_cli, run_machine

PROBE_SRC = GUESTS / "probes"
PROBE_BUILD = GUESTS / "build" / "rv32" / "probes"
PROBE_EXPECTED = PROBE_SRC / "expected"

# Compared with QEMU (an expected/ file each). See probes/README.md for what each one checks.
PROBES = (
    "q_amo_amoadd_w",  # the reviewer's t2
    "q_entry",
    "q_mmio_csrr_mcycle",
    "q_mmio_csrr_mip",
    "q_mmio_nop",
    "q_mmio_rdtime",
    "q_mmio_wfi",  # the reviewer's t1
    "q_mmu",
    "q_smc",
    "q_smode",
    "q_smret",
    "q_storm2",
    "q_umie",
    "q_umode_csrr_mcycle",
    "q_umode_csrr_mip",
    "q_umode_csrr_mstatus",
    "q_umode_csrr_sip",
    "q_umode_csrw_mie",
    "q_umode_mret",
    "q_umode_rdcycle",
    "q_umode_rdtime",
    "q_umode_wfi",  # the reviewer's t3
    "wfi_masked_msip",
)
# Sleeps forever on QEMU (wfi with only a masked interrupt pending): chronicorn-only test below.
CHRONICORN_ONLY = ("wfi_masked",)

QEMU = "qemu-system-riscv32"
WFI = 0x10500073
MTIP = 1 << 7
MEIE = 1 << 11


def probe(name: str) -> Path:
    return PROBE_BUILD / f"{name}.elf"


def expected(name: str) -> bytes:
    return (PROBE_EXPECTED / f"{name}.out").read_bytes()


def test_every_probe_is_listed_built_and_recorded() -> None:
    """No probe source, ELF or recording is silently left out of the tests below."""
    sources = {p.stem for p in PROBE_SRC.glob("*.S")} - {"dump"}
    elfs = {p.stem for p in PROBE_BUILD.glob("*.elf")}
    recorded = {p.stem for p in PROBE_EXPECTED.glob("*.out")}
    assert sources == set(PROBES) | set(CHRONICORN_ONLY)
    assert elfs == sources
    assert recorded == set(PROBES)


@pytest.mark.parametrize("name", PROBES)
def test_probe_matches_qemu_recording(name: str) -> None:
    want = expected(name)
    assert len(want.splitlines()) == 9  # s1..s9, as printed by dump.S
    run = run_machine(probe(name))
    assert isinstance(run.machine.counter, NativeCounter)
    assert run.result.kind is RunKind.EXITED, run.result.describe()
    assert run.result.exit_code == 0
    assert run.output.decode().splitlines() == want.decode().splitlines()  # readable diff per register
    assert run.output == want


@pytest.mark.parametrize("name", PROBES + CHRONICORN_ONLY)
def test_native_and_fallback_agree(name: str) -> None:
    native = run_machine(probe(name))
    fallback = run_machine(probe(name), native=False)
    assert isinstance(native.machine.counter, NativeCounter)
    assert isinstance(fallback.machine.counter, PythonCounter)
    assert fallback.output == native.output
    assert fallback.result == native.result  # same end, icount and pc
    assert fallback.machine.digest() == native.machine.digest()  # same registers, CSRs, RAM, devices


@pytest.mark.parametrize("native", [True, False], ids=["native", "fallback"])
def test_wfi_with_only_a_masked_interrupt_pending_idles_forever(native: bool) -> None:
    """wfi_masked: on QEMU it sleeps forever; chronicorn must say so at once, not spin or wake."""
    # Through the CLI first: its timeout turns a hang (an idle loop that never ends) into a failure.
    proc = run_cli("run", str(probe("wfi_masked")), *([] if native else ["--no-native"]), timeout=60)
    assert proc.stdout == b""
    assert proc.returncode == 4, proc.stderr.decode()  # EXIT_IDLE_FOREVER
    assert b"waits for input forever" in proc.stderr

    # A spinning wfi would run into this limit instead of idling.
    run = run_machine(probe("wfi_masked"), max_icount=1_000_000, native=native)
    assert run.result.kind is RunKind.IDLE_FOREVER, run.result.describe()
    assert run.output == b""
    assert run.result.icount < 32  # stopped at the first wfi: boot ROM + a few instructions
    # Halted in the wfi, which has retired (as on QEMU, an interrupt would return past it).
    assert int.from_bytes(run.machine.uc.mem_read(run.result.pc - 4, 4), "little") == WFI
    assert run.machine.mip() & MTIP  # the timer is pending ...
    assert run.machine.hart.csr(rc.UC_RISCV_REG_MIE) == MEIE  # ... but masked


def qemu_output(name: str) -> bytes:
    require_tool(shutil.which(QEMU), f"{QEMU} not installed")
    cmd = [QEMU, "-M", "virt", "-m", "128M", "-bios", "none", "-nographic", "-icount", "shift=0"]
    # The timeout only turns a hang into a failure: every probe exits through the finisher at once.
    proc = subprocess.run(
        [*cmd, "-kernel", str(probe(name))], stdin=subprocess.DEVNULL, capture_output=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


@pytest.mark.qemu
@pytest.mark.parametrize("name", PROBES)
def test_qemu_matches_recording(name: str) -> None:
    assert qemu_output(name) == expected(name)
