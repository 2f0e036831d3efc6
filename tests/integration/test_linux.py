"""Linux 6.1 boots to its init on chronicorn as on QEMU 7.2, records, replays, and is debugged backwards
(issue 17, item 2).

The guest is ``tests/guests/linux``: Debian's linux-source-6.1 built from ``tinyconfig`` plus a fragment
(``make -C tests/guests/linux``; the built ``Image`` and ``initramfs.cpio`` are committed), booted as QEMU boots
it: OpenSBI's ``fw_dynamic.bin`` as ``-bios``, the kernel as ``-kernel``, the initramfs as ``-initrd``, and a
command line. Its ``/init`` prints a few lines (one of them checks that ``nanosleep`` advances the clock: the SBI
timer, as chronicorn's CPU has no Sstc) and powers off through OpenSBI.

QEMU runs with ``-cpu rv64,h=false,sstc=false``: the CPU chronicorn has (no hypervisor extension, no Sstc: the
kernel then uses the SBI timer, as it must on chronicorn). The consoles are compared whole, except three lines
that describe the emulator's CPU rather than the guest (each said where it is masked).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_tool, run_cli
from tests.e2e.gdb import Gdb, ServerProcess, require_gdb
from tests.uboot import run_scripted

LINUX = ROOT / "tests" / "guests" / "linux" / "build"
OPENSBI = Path("/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin")
APPEND = "console=ttyS0 earlycon=uart8250,mmio,0x10000000 initramfs_async=0"
KERNEL_ARGS = ["--kernel", str(LINUX / "Image"), "--initrd", str(LINUX / "initramfs.cpio"), "--append", APPEND]


def _emulator_lines(line: str) -> bool:
    """Lines that describe the emulator's CPU, not the guest's behaviour:

    - OpenSBI's "Boot HART Priv Version" (Unicorn's CPU is QEMU 5's: privileged spec v1.10, QEMU 7.2's v1.12) and
      "Boot HART MHPM Count" (Unicorn's CPU has no hpmcounters);
    - Linux's "Memory: ... available ... reserved" totals: QEMU 7.2's CPU offers Sv57 paging, Unicorn's Sv48, so
      Linux's early page tables differ by a level (2 pages), and QEMU's device tree (more devices) takes 2 pages
      more (with chronicorn's device tree, ``-dtb``, QEMU reserves 8 KiB more than chronicorn, no longer 16).
    """
    return line.startswith(("Boot HART Priv Version", "Boot HART MHPM Count", "Memory: "))


def _compared(console: bytes) -> list[str]:
    return [line for line in console.decode("utf-8", errors="replace").split("\r\n") if not _emulator_lines(line)]


def _require_guest() -> None:
    require_tool(Path("/usr/bin/qemu-system-riscv64").exists(), "qemu-system-riscv64 is needed (qemu-system-misc)")
    require_tool(OPENSBI.exists(), "Debian's OpenSBI is needed (opensbi)")


@pytest.mark.slow
@pytest.mark.qemu
def test_linux_boots_to_init_as_on_qemu_records_and_replays(tmp_path: Path) -> None:
    _require_guest()
    qemu = run_scripted(["qemu-system-riscv64", "-M", "virt", "-m", "128M", "-nographic", "-net", "none",
                         "-cpu", "rv64,h=false,sstc=false", "-bios", str(OPENSBI), "-kernel", str(LINUX / "Image"),
                         "-initrd", str(LINUX / "initramfs.cpio"), "-append", APPEND], [], [], timeout=300)  # fmt: skip
    assert qemu.returncode == 0, qemu.transcript[-3000:]
    recording = tmp_path / "linux.chrec"
    recorded = run_cli("record", "--arch", "riscv64", "--bios", str(OPENSBI), *KERNEL_ARGS, "-o", str(recording),
                       timeout=600)  # fmt: skip
    assert recorded.returncode == 0, recorded.stderr.decode(errors="replace")
    ours = _compared(recorded.stdout)
    assert ours == _compared(qemu.transcript.encode())
    assert "chronicorn-linux: init is running" in ours
    assert "chronicorn-linux: nanosleep(20ms) advanced CLOCK_MONOTONIC by >= 20ms: ok" in ours
    assert ours[-2:] == ["reboot: Power down", ""]
    replayed = run_cli("replay", str(recording), timeout=600)
    assert replayed.returncode == 0, replayed.stderr.decode(errors="replace")
    assert replayed.stdout == recorded.stdout  # byte for byte
    _reverse_debug_init(recording)


def _elf_entry(path: Path) -> int:
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2  # ELF64
    return struct.unpack_from("<Q", data, 24)[0]


def _reverse_debug_init(recording: Path) -> None:
    """gdb on the recorded boot (``replay --port``): a breakpoint on /init's first instruction (a user-space
    address, under Linux's page tables) is hit going forward; from the end of history, reverse-continue comes
    back to that same icount; one reverse-stepi from there is the kernel's return to user mode (``sret``, at a
    kernel address gdb reads through the MMU), and going forward comes back to /init at the same icount."""
    require_gdb()
    init = LINUX / "init"
    entry = _elf_entry(init)
    server = ServerProcess(recording, command="replay")
    gdb = Gdb(init)
    try:
        gdb.connect(server.port)
        gdb.mi(f"-break-insert *{entry:#x}")
        stop = gdb.cont()
        assert gdb.location().pc == entry, stop
        hit = gdb.icount()
        gdb.mi("-break-delete")
        gdb.cont()  # to the power-off: the end of history
        assert gdb.icount() > hit
        gdb.mi(f"-break-insert *{entry:#x}")
        gdb.cont(reverse=True)
        assert gdb.location().pc == entry and gdb.icount() == hit
        gdb.mi("-break-delete")
        gdb.stepi(reverse=True)
        assert gdb.icount() == hit - 1
        kernel_pc = gdb.registers()["pc"]
        assert kernel_pc >= 0xFFFF_FFFF_8000_0000  # the kernel's sret, at its virtual address
        assert gdb.instruction(kernel_pc).split()[0] == "sret"
        # Forward again (gdb steps RISC-V in software and cannot follow an sret: a breakpoint takes it there).
        gdb.mi(f"-break-insert *{entry:#x}")
        gdb.cont()
        assert gdb.location().pc == entry and gdb.icount() == hit
    finally:
        gdb.close()
        server.stop()
