"""The same guests on QEMU (-M virt -bios none -kernel X) give byte-identical UART output."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import fdt
import pytest

from machine.arch.registry import ARCHES
from machine.factory import make_machine
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import MachineConfig
from tests.conftest import GUEST_NAMES, GUESTS, XLENS_RV64_SLOW, guest, guest_input, require_tool, run_cli

pytestmark = pytest.mark.qemu
OPENSBI_DIR = Path("/usr/lib/riscv64-linux-gnu/opensbi/generic")


def qemu(xlen: str) -> str:
    binary = f"qemu-system-riscv{xlen[2:]}"
    require_tool(shutil.which(binary), f"{binary} not installed")
    return binary


def read_qemu(cmd: list[str], stdin: bytes, want: int | None, timeout: float = 60) -> bytes:
    """QEMU's stdout: all of it when the guest exits, else its first ``want`` bytes."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        if want is None:
            out, _ = proc.communicate(stdin, timeout=timeout)
            return out
        proc.stdin.write(stdin)
        proc.stdin.close()
        out = b""
        while len(out) < want:
            chunk = proc.stdout.read1(want - len(out))
            if not chunk:
                break
            out += chunk
        return out
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("xlen", XLENS_RV64_SLOW)
@pytest.mark.parametrize("name", GUEST_NAMES)
def test_same_uart_output_as_qemu(xlen: str, name: str) -> None:
    ours = run_cli("run", str(guest(xlen, name)), stdin=guest_input(name))
    cmd = [
        qemu(xlen),
        "-M",
        "virt",
        "-m",
        "128M",
        "-bios",
        "none",
        "-nographic",
        "-kernel",
        str(guest(xlen, name)),
    ]
    # The fault guest never exits on QEMU (the trap loops at mtvec=0): compare what it printed.
    theirs = read_qemu(cmd, guest_input(name), len(ours.stdout) if name == "fault" else None)
    assert ours.stdout == theirs
    assert ours.stdout  # every guest prints something


@pytest.mark.parametrize(("name", "input_name", "exit_code"), [("cmdint", "cmdint-bug.txt", 7), ("stray", None, 7)])
def test_bug_guests_fail_the_same_way_on_qemu(xlen: str, name: str, input_name: str | None, exit_code: int) -> None:
    """The firmware with bugs (demo, locate) fails on QEMU exactly as here: same output, same exit code."""
    stdin = (GUESTS / "inputs" / input_name).read_bytes() if input_name else b""
    ours = run_cli("run", str(guest(xlen, name)), stdin=stdin)
    cmd = [qemu(xlen), "-M", "virt", "-m", "128M", "-bios", "none", "-nographic", "-kernel", str(guest(xlen, name))]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=60)
    assert ours.returncode == proc.returncode == exit_code
    assert ours.stdout == proc.stdout and b"FAILED" in ours.stdout


def test_rtc_reads_the_host_clock_as_on_qemu(xlen: str) -> None:
    """The RTC guest prints the host time: both emulators must give a plausible, current one."""
    ours = run_cli("run", str(guest(xlen, "rtc")))
    cmd = [qemu(xlen), "-M", "virt", "-m", "128M", "-bios", "none", "-nographic", "-kernel", str(guest(xlen, "rtc"))]
    theirs = read_qemu(cmd, b"", None)
    for out in (ours.stdout, theirs):
        lines = out.decode().splitlines()
        assert lines[0].startswith("rtc ns: 0x") and lines[1] == "rtc plausible"
    ours_s = int(ours.stdout.split()[2], 16) // 10**9
    theirs_s = int(theirs.split()[2], 16) // 10**9
    assert abs(ours_s - theirs_s) < 120  # both read the same host clock


CPU_MODEL_LINES = (
    "Boot HART Priv Version",
    "Boot HART Base ISA",
    "Boot HART ISA Extensions",
    "Boot HART MHPM Count",
    "Boot HART MIDELEG",
    "Boot HART MEDELEG",
)


def _without_cpu_model(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if not ln.startswith(CPU_MODEL_LINES)]


@pytest.mark.slow
@pytest.mark.parametrize("firmware", ["fw_jump.elf", "fw_dynamic.elf"])
def test_opensbi_boots_to_its_banner_as_on_qemu(firmware: str) -> None:
    """Debian's OpenSBI fw_jump boots on our virt board and prints what it prints on QEMU.

    Only the lines describing the CPU model differ (Unicorn's CPU is QEMU 5's:
    priv spec 1.10, no H extension, no sstc, no HPM counters).
    """
    opensbi = OPENSBI_DIR / firmware
    require_tool(opensbi, "Debian's opensbi package is not installed")
    ours = run_cli("run", str(opensbi), "--max-insns", "16000000", timeout=300)  # (the 8 virtio nodes: ~11M)
    assert ours.returncode == 0, ours.stderr
    text = ours.stdout.decode()
    assert "OpenSBI v" in text and "Platform Name             : riscv-virtio,qemu" in text
    assert "Domain0 Next Mode         : S-mode" in text
    cmd = [qemu("rv64"), "-M", "virt", "-m", "128M", "-bios", str(opensbi), "-nographic"]
    theirs = read_qemu(cmd, b"", len(ours.stdout)).decode(errors="replace")
    # QEMU's differing CPU lines change the byte count: compare line by line up to the last one.
    ours_lines = _without_cpu_model(text)
    theirs_lines = _without_cpu_model(theirs)[: len(ours_lines) - 1]
    assert len(theirs_lines) > 30
    assert ours_lines[: len(theirs_lines)] == theirs_lines


KERNEL_S = """
  .globl _start
_start:                       # an S-mode kernel: prints through the SBI console, then shuts the machine down
  lla s1, msg
1:
  lbu a0, 0(s1)
  beqz a0, 2f
  li a7, 1                    # legacy console putchar
  ecall
  addi s1, s1, 1
  j 1b
2:
  li a7, 0x53525354           # SRST: system reset, shutdown
  li a6, 0
  li a0, 0
  li a1, 0
  ecall
3:
  j 3b
msg:
  .asciz "hello from the S-mode kernel\\n"
"""


def _kernel(tmp_path: Path, text: str = KERNEL_S) -> Path:
    """The kernel above as a raw binary (QEMU's -kernel places it after the firmware), assembled here."""
    require_tool(shutil.which("riscv64-unknown-elf-as"), "riscv64-unknown-elf-as is needed (gcc-riscv64-unknown-elf)")
    source, obj, elf, raw = (tmp_path / f"kernel.{ext}" for ext in ("S", "o", "elf", "bin"))
    source.write_text(text)
    subprocess.run(["riscv64-unknown-elf-as", "-march=rv64imac_zicsr", "-o", str(obj), str(source)], check=True)
    subprocess.run(["riscv64-unknown-elf-ld", "-N", "-Ttext=0", "-e", "_start", "-o", str(elf), str(obj)],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(["riscv64-unknown-elf-objcopy", "-O", "binary", str(elf), str(raw)], check=True)
    return raw


@pytest.mark.parametrize("firmware", ["fw_dynamic.bin", pytest.param("fw_jump.elf", marks=pytest.mark.slow)])
def test_bios_and_kernel_boot_as_on_qemu(firmware: str, tmp_path: Path) -> None:
    """QEMU's two-image boot on RISC-V virt (issue 17 item 3), ``-bios OpenSBI -kernel IMAGE``: the kernel right
    after the firmware (2 MiB aligned), fw_dynamic's boot info naming it as the next stage in S-mode; OpenSBI's
    banner, the kernel's output and the shutdown it asks the SBI for are QEMU's (but for the CPU model's lines).
    The recording replays the same and refuses another kernel file."""
    opensbi = OPENSBI_DIR / firmware
    require_tool(opensbi, "Debian's opensbi package is not installed")
    kernel = _kernel(tmp_path)
    recording = tmp_path / "two.chrec"
    extra = ["--arch", "riscv64"] if firmware.endswith(".bin") else []
    ours = run_cli("record", "--bios", str(opensbi), *extra, "--kernel", str(kernel), "-o", str(recording),
                   "--uart-input", "/dev/null", timeout=300)  # fmt: skip
    assert ours.returncode == 0, ours.stderr  # the kernel's SRST shutdown: OpenSBI stops the test finisher
    text = ours.stdout.decode().replace("\r\n", "\n")  # (OpenSBI's console writes CR LF)
    assert "Domain0 Next Address      : 0x0000000080200000" in text and "Domain0 Next Mode         : S-mode" in text
    assert text.endswith("hello from the S-mode kernel\n")
    cmd = [qemu("rv64"), "-M", "virt", "-m", "128M", "-bios", str(opensbi), "-kernel", str(kernel), "-nographic"]
    theirs = read_qemu(cmd, b"", None).decode(errors="replace")
    assert _without_cpu_model(text) == _without_cpu_model(theirs.replace("\r\n", "\n"))
    replayed = run_cli("replay", str(recording), timeout=300)
    assert replayed.returncode == 0 and replayed.stdout == ours.stdout
    kernel.write_bytes(kernel.read_bytes() + b"\0")
    other = run_cli("replay", str(recording), timeout=300)
    assert other.returncode == 2 and b"is not the one the recording was made with" in other.stderr


def test_initrd_and_append_are_where_qemu_puts_them(tmp_path: Path) -> None:
    """``--initrd FILE --append TEXT`` with ``--kernel`` (issue 17 item 3): the RAM disk half of RAM (at most
    128 MiB) after the kernel's entry, its bytes there, and /chosen naming it and the command line as in the
    device tree QEMU 7.2 builds for the same command line (``-machine dumpdtb=``)."""
    opensbi = OPENSBI_DIR / "fw_dynamic.bin"
    require_tool(opensbi, "Debian's opensbi package is not installed")
    kernel = _kernel(tmp_path)
    initrd = tmp_path / "initrd.img"
    initrd.write_bytes(bytes(range(256)) * 20 + b"end")
    append = "console=ttyS0 root=/dev/ram rdinit=/init"
    dumped = tmp_path / "qemu.dtb"
    subprocess.run([qemu("rv64"), "-M", f"virt,dumpdtb={dumped}", "-m", "128M", "-bios", str(opensbi), "-kernel",
                    str(kernel), "-initrd", str(initrd), "-append", append, "-nographic"],
                   capture_output=True, timeout=60, check=True)  # fmt: skip
    theirs = fdt.parse_dtb(dumped.read_bytes())
    config = MachineConfig(ARCHES["riscv64"], 128 << 20, kernel=str(kernel), initrd=str(initrd), append=append)
    machine = make_machine(load_image(opensbi, 0x8000_0000), ScriptedInputs(), lambda byte: None, config)
    ours = fdt.parse_dtb(machine.memory.read(machine.fdt_addr, 0x10000))
    for name in ("bootargs", "linux,initrd-start", "linux,initrd-end"):
        assert ours.get_property(name, "/chosen").value == theirs.get_property(name, "/chosen").value, name
    start = ours.get_property("linux,initrd-start", "/chosen").value
    assert machine.memory.read(start, initrd.stat().st_size) == initrd.read_bytes()
    assert (
        run_cli(
            "run", "--bios", str(opensbi), "--arch", "riscv64", "--initrd", str(initrd), "--max-insns", "10"
        ).returncode
        == 2
    )  # (--initrd without --kernel)
