#!/usr/bin/env python3
"""Real firmware polling the clock: chronicorn against QEMU 7.2 with -icount, in one run (issue 17, item 1).

U-Boot's delays poll the clock every few dozen instructions: CLINT ``mtime`` loads in M-mode (Debian's
``qemu-riscv64`` build, run as QEMU's ``-bios``), ``rdtime`` in S-mode (the ``qemu-riscv64_smode`` build as
``-kernel`` after OpenSBI's ``fw_dynamic.bin`` as ``-bios``). Each scenario is a scripted serial session:

- ``base``: stop autoboot at its prompt, ``poweroff``;
- ``sleep1``: the same with ``sleep 1`` between (one second of the guest's time spent polling);
- ``autoboot``: no key: the 2 s countdown runs out, the boot command finds nothing to boot, ``poweroff`` at the
  prompt (M-mode only).

chronicorn records it (``chronicorn record --uart-input FILE --expect PROMPT...``: each line goes in once the
guest printed a prompt since the previous one); QEMU runs the same firmware with ``-icount shift=3`` (the virtual
clock chronicorn keeps by default: 8 ns per instruction, so both execute the same number of instructions for a
second of guest time) and gets the same lines the same way from this script. The cost is the process's CPU time
(user + system, from ``os.wait4``), start-up included; "sleep 1 alone" is ``sleep1`` minus ``base``. Medians of
``--rounds`` rounds; each round runs every scenario on chronicorn and then on QEMU, so load changes hit both.
The bar (issue 17): U-Boot's ``sleep 1`` costs at most 2x the CPU time of QEMU -icount.

Usage: ``scripts/bench_timer.py [--rounds N] [--chronicorn-root DIR]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.uboot import history_end, run_scripted  # noqa: E402 (the scripted-session driver the tests use)

UBOOT_M = Path("/usr/lib/u-boot/qemu-riscv64/uboot.elf")
UBOOT_S = Path("/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin")
OPENSBI = Path("/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin")
AUTOBOOT, PROMPT = "Hit any key to stop autoboot", "=> "
SESSION_TIMEOUT = 600.0


@dataclass(frozen=True)
class Scenario:
    """One scripted serial session: the lines, and the prompts each waits for."""

    name: str
    smode: bool
    lines: tuple[str, ...]
    prompts: tuple[str, ...]


SCENARIOS = (
    Scenario("M-mode base", False, ("", "poweroff"), (AUTOBOOT, PROMPT)),
    Scenario("M-mode sleep1", False, ("", "sleep 1", "poweroff"), (AUTOBOOT, PROMPT)),
    Scenario("M-mode autoboot", False, ("poweroff",), (PROMPT,)),
    Scenario("S-mode base", True, ("", "poweroff"), (AUTOBOOT, PROMPT)),
    Scenario("S-mode sleep1", True, ("", "sleep 1", "poweroff"), (AUTOBOOT, PROMPT)),
)


def _python(root: Path) -> list[str]:
    venv = root / ".venv" / "bin" / "python"
    return [str(venv) if venv.exists() else sys.executable, "-m", "gdbstub.cli"]


def run_chronicorn(root: Path, scenario: Scenario, work: Path) -> tuple[float, int]:
    """CPU seconds of ``chronicorn record`` for the session, and the instructions it recorded."""
    script, recording = work / "input.txt", work / "run.chrec"
    script.write_text("\n".join(scenario.lines) + "\n")
    image = ["--arch", "riscv64", "--bios", str(OPENSBI), "--kernel", str(UBOOT_S)] if scenario.smode else [
        str(UBOOT_M)]  # fmt: skip
    argv = [*_python(root), "record", *image, "-o", str(recording), "--uart-input", str(script)]
    for prompt in scenario.prompts:
        argv += ["--expect", prompt]
    env = {**os.environ, "PYTHONPATH": str(root)}
    run = run_scripted(argv, [], [], SESSION_TIMEOUT, cwd=root, env=env)  # its input comes from the file
    if run.returncode != 0:
        raise RuntimeError(f"chronicorn record failed ({run.returncode}): {run.transcript[-500:]}")
    info = subprocess.run([*_python(root), "info", str(recording)], cwd=root, env=env, capture_output=True,
                          text=True, check=True)  # fmt: skip
    return run.cpu_seconds, history_end(info.stdout)


def _engine_patches(root: Path) -> list[str]:
    """chronicorn's Unicorn patches in the library the measured processes load (third_party/unicorn)."""
    code = "from machine.unicorn_patches import engine_patches; print(','.join(sorted(engine_patches())))"
    out = subprocess.run([_python(root)[0], "-c", code], cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                         capture_output=True, text=True, check=True)  # fmt: skip
    return [name for name in out.stdout.strip().split(",") if name]


def run_qemu(scenario: Scenario) -> float:
    """CPU seconds of QEMU -icount shift=3 for the same session (lines sent after a prompt, as --expect does)."""
    firmware = ["-bios", str(OPENSBI), "-kernel", str(UBOOT_S)] if scenario.smode else ["-bios", str(UBOOT_M)]
    argv = ["qemu-system-riscv64", "-M", "virt", "-m", "128M", "-nographic", "-icount", "shift=3", *firmware]
    run = run_scripted(argv, scenario.lines, scenario.prompts, SESSION_TIMEOUT)
    if run.returncode != 0:
        raise RuntimeError(f"QEMU exited with {run.returncode}: {run.transcript[-500:]}")
    return run.cpu_seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chronicorn-root", type=Path, default=ROOT)
    args = parser.parse_args()
    for tool, path in (("qemu-system-riscv64", shutil.which("qemu-system-riscv64")), ("U-Boot", UBOOT_M),
                       ("S-mode U-Boot", UBOOT_S), ("OpenSBI", OPENSBI)):  # fmt: skip
        if path is None or not Path(path).exists():
            print(f"missing {tool}: apt-get install qemu-system-misc u-boot-qemu opensbi", file=sys.stderr)
            return 2
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {args.rounds} rounds; medians")
    print(f"Unicorn library: {', '.join(sorted(_engine_patches(args.chronicorn_root))) or 'the wheel (stock)'}")
    ours: dict[str, list[float]] = {s.name: [] for s in SCENARIOS}
    qemu: dict[str, list[float]] = {s.name: [] for s in SCENARIOS}
    insns: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for scenario in SCENARIOS:
                cpu, n = run_chronicorn(args.chronicorn_root, scenario, Path(tmp))
                ours[scenario.name].append(cpu)
                insns[scenario.name] = n
                qemu[scenario.name].append(run_qemu(scenario))
    med = {name: (statistics.median(ours[name]), statistics.median(qemu[name])) for name in ours}
    print("\n| scenario | instructions | chronicorn CPU s | QEMU -icount CPU s | ratio |\n|---|---|---|---|---|")
    for name, (a, b) in med.items():
        print(f"| {name} | {insns[name] / 1e6:.1f}M | {a:.2f} | {b:.2f} | {a / b:.2f} |")
    print("\n| sleep 1 alone (sleep1 - base) | chronicorn CPU s | QEMU -icount CPU s | ratio (bar <= 2) |")
    print("|---|---|---|---|")
    for mode in ("M-mode", "S-mode"):
        a = med[f"{mode} sleep1"][0] - med[f"{mode} base"][0]
        b = med[f"{mode} sleep1"][1] - med[f"{mode} base"][1]
        print(f"| {mode} | {a:.2f} | {b:.2f} | {a / b:.2f} |")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
