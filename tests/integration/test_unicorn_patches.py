"""Unicorn rebuilt with chronicorn's patches (third_party/unicorn, scripts/build_unicorn.py) computes what the wheel's
library computes: a recording made on either replays on the other, every verification point (a digest of the
CPU, RAM and devices every 2^20 instructions) checked, with the same console output.

The patches only change speed (stores to RAM pages without code on the fast path, the one code hook on an
instruction called directly, RISC-V counter reads answered as Unicorn executes them); the guests here exercise
each: U-Boot polling ``rdtime`` in S-mode, Linux loading and running a user program (stores through one virtual
mapping to code run through another), the Arm boards' compute and timer programs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_tool, stock_library_dir

OPENSBI = Path("/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin")
UBOOT_S = Path("/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin")
LINUX = ROOT / "tests" / "guests" / "linux" / "build"
LINUX_APPEND = "console=ttyS0 earlycon=uart8250,mmio,0x10000000 initramfs_async=0"
ALL_PATCHES = frozenset({"fast-stores", "direct-code-hooks", "riscv-counter-read"})

# name -> (record arguments before -o, what the guest needs to exist)
GUESTS: dict[str, tuple[list[str], list[Path]]] = {
    "uboot-smode-sleep": (["--arch", "riscv64", "--bios", str(OPENSBI), "--kernel", str(UBOOT_S), "--uart-input",
                           "{INPUT}", "--expect", "Hit any key to stop autoboot", "--expect", "=> "],
                          [OPENSBI, UBOOT_S]),
    "linux": (["--arch", "riscv64", "--bios", str(OPENSBI), "--kernel", str(LINUX / "Image"), "--initrd",
               str(LINUX / "initramfs.cpio"), "--append", LINUX_APPEND], [OPENSBI, LINUX / "Image"]),
    "aarch64-timer": ([str(ROOT / "tests/guests/aarch64/build/timer.elf")], []),
    "aarch64-compute": ([str(ROOT / "tests/guests/aarch64/build/compute.elf")], []),
    "cortexm-compute": ([str(ROOT / "tests/guests/cortexm/build/compute.elf")], []),
}  # fmt: skip


def _loaded_patches(env: dict[str, str]) -> frozenset[str]:
    code = "from machine.unicorn_patches import engine_patches; print(','.join(sorted(engine_patches())))"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return frozenset(name for name in out.stdout.strip().split(",") if name)


def _engines() -> dict[str, dict[str, str]]:
    """The environment of a process on each engine: the installed (patched) library, and the wheel's own."""
    require_tool(_loaded_patches(dict(os.environ)) == ALL_PATCHES,
                 "the installed Unicorn lacks chronicorn's patches: run scripts/build_unicorn.py")  # fmt: skip
    stock = stock_library_dir()
    require_tool(stock / "libunicorn.so.2", "the wheel's Unicorn library is not kept (scripts/build_unicorn.py)")
    patched_env = {k: v for k, v in os.environ.items() if k != "LIBUNICORN_PATH"}
    stock_env = {**patched_env, "LIBUNICORN_PATH": str(stock)}
    assert _loaded_patches(stock_env) == frozenset()  # LIBUNICORN_PATH really loads the wheel's library
    return {"patched": patched_env, "stock": stock_env}


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "gdbstub.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=600)  # fmt: skip


def test_the_installed_unicorn_carries_chronicorns_patches() -> None:
    _engines()


@pytest.mark.parametrize("guest", sorted(GUESTS))
@pytest.mark.parametrize("recorder", ["patched", "stock"])
def test_a_recording_replays_verified_on_the_other_engine(guest: str, recorder: str, tmp_path: Path) -> None:
    engines = _engines()
    args, needs = GUESTS[guest]
    for path in needs:
        require_tool(path, f"{path} is needed (opensbi, u-boot-qemu, or the committed Linux guest)")
    script = tmp_path / "input.txt"
    script.write_text("\nsleep 1\npoweroff\n")
    recording = tmp_path / "run.chrec"
    recorded = _cli(engines[recorder], "record", *[a.replace("{INPUT}", str(script)) for a in args], "-o",
                    str(recording))  # fmt: skip
    assert recorded.returncode == 0, recorded.stderr.decode(errors="replace")[-2000:]
    replayer = "stock" if recorder == "patched" else "patched"
    replayed = _cli(engines[replayer], "replay", str(recording))
    assert replayed.returncode == 0, replayed.stderr.decode(errors="replace")[-2000:]
    assert replayed.stdout == recorded.stdout
    assert len(recorded.stdout) > 40  # the guest printed what it does


def test_counter_reads_are_answered_inside_unicorn_on_the_patched_engine() -> None:
    """With the riscv-counter-read patch the board traps no counter CSR: the native helper answers them as Unicorn
    executes them (the board's path still takes the ones it declines: tests/unit/test_timer_sites.py)."""
    env = _engines()["patched"]
    code = (
        "from machine.loader import load_image\n"
        "from machine.machine import Machine\n"
        "from machine.inputs import ScriptedInputs\n"
        "from machine.arch import riscv_insn as ri\n"
        f"m = Machine(load_image({str(ROOT / 'tests/guests/riscv/build/rv64/hello.elf')!r}), ScriptedInputs(),"
        " lambda b: None)\n"
        "print(m.engine.native_declines is not None, m.counter._trapped == ri.TRAPPED_NATIVE_COUNTERS)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]


def test_the_timer_sites_on_the_stock_engine() -> None:
    """On the wheel's library the counter CSRs are still trapped and answered by native code hooks (sites) that
    skip the instruction: their tests, which compare them with the Python path at every cut and single step, run
    there too (CI installs the patched library, so nothing else would run them)."""
    env = _engines()["stock"]
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit/test_timer_sites.py"]
    out = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:]
    assert " passed" in out.stdout and "skipped" not in out.stdout
