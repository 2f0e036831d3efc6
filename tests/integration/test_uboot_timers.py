"""Real firmware polling the clock (issue 17, item 1): Debian's U-Boot waits out its autoboot countdown and a
``sleep 1`` on chronicorn as on QEMU, records, replays, and steps back and forth through its timer reads.

M-mode U-Boot (``-bios``) reads the CLINT's ``mtime``; S-mode U-Boot (``-kernel`` after OpenSBI's
``fw_dynamic.bin``) reads ``rdtime``. Both are answered inside ``emu_start`` (machine.riscv_timer_sites); what
these tests check is that the firmware sees the same clock as on QEMU (its countdown and sleep print what QEMU's
print, and last as long as the virtual clock says), that a replay is byte for byte the recording, and that gdb's
``reverse-stepi`` over instructions that read the clock retraces exactly what ``stepi`` went through. How fast
is measured by ``scripts/bench_timer.py``, not here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import uboot
from tests.conftest import require_tool, run_cli
from tests.e2e.gdb import Gdb, ServerProcess, require_gdb

UBOOT_S = Path("/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin")
OPENSBI = Path("/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin")
NS_PER_INSN = 8  # chronicorn's default icount shift (3), and QEMU's -icount shift=3
SESSIONS = {
    # M-mode: no key, the 2 s countdown runs out and the boot command finds nothing; then sleep 1 at the prompt.
    "mmode": (["sleep 1", "poweroff"], [uboot.PROMPT], 3.0),
    # S-mode: the countdown is stopped at once, then sleep 1.
    "smode": (["", "sleep 1", "poweroff"], [uboot.AUTOBOOT, uboot.PROMPT], 1.0),
}


def _firmware(mode: str) -> tuple[list[str], list[str]]:
    """(chronicorn's image options, QEMU's) for the mode's U-Boot."""
    if mode == "mmode":
        return [str(uboot.UBOOT_ELF)], ["-bios", str(uboot.UBOOT_ELF)]
    return (["--arch", "riscv64", "--bios", str(OPENSBI), "--kernel", str(UBOOT_S)],
            ["-bios", str(OPENSBI), "-kernel", str(UBOOT_S)])  # fmt: skip


def _compared(transcript: str, mode: str) -> str:
    """The session from the countdown on (before it, the banner names the CPU's extensions and counts the board's
    devices: the emulator, not the firmware's behaviour). Where a key stops the countdown, from the first prompt
    on: QEMU's key arrives at a host-timed point of the countdown, which then prints a space more or less."""
    marker = uboot.AUTOBOOT if mode == "mmode" else uboot.PROMPT
    at = transcript.find(marker)
    assert at >= 0, transcript[-2000:]
    return transcript[at:]


def _end_icount(recording: Path) -> int:
    info = run_cli("info", str(recording), timeout=120)
    assert info.returncode == 0, info.stderr
    return uboot.history_end(info.stdout.decode())


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("mode", sorted(SESSIONS))
def test_a_timed_uboot_session_prints_what_qemu_prints_and_replays(tmp_path: Path, mode: str) -> None:
    require_tool(Path("/usr/bin/qemu-system-riscv64").exists(), "qemu-system-riscv64 is needed (qemu-system-misc)")
    require_tool(uboot.UBOOT_ELF.exists() and UBOOT_S.exists(), "Debian's U-Boot builds are needed (u-boot-qemu)")
    require_tool(OPENSBI.exists(), "Debian's OpenSBI is needed (opensbi)")
    lines, prompts, seconds = SESSIONS[mode]
    ours_image, qemu_image = _firmware(mode)
    theirs = uboot.run_scripted(["qemu-system-riscv64", "-M", "virt", "-m", "128M", "-nographic", "-net", "none",
                                 "-icount", "shift=3", *qemu_image], lines, prompts)  # fmt: skip
    assert theirs.returncode == 0, theirs.transcript[-2000:]
    script, recording = tmp_path / "input.txt", tmp_path / "session.chrec"
    script.write_text("\n".join(lines) + "\n")
    expects = [arg for prompt in prompts for arg in ("--expect", prompt)]
    recorded = run_cli("record", *ours_image, "-o", str(recording), "--uart-input", str(script), *expects,
                       timeout=600)  # fmt: skip
    assert recorded.returncode == 0, recorded.stderr
    ours = recorded.stdout.decode("utf-8", errors="replace")  # U-Boot prints CR LF: decoded as it is
    assert _compared(ours, mode) == _compared(theirs.transcript, mode)
    # The waits took as long as the virtual clock says: at least `seconds` of guest time went by.
    assert _end_icount(recording) * NS_PER_INSN >= seconds * 1e9
    replayed = run_cli("replay", str(recording), timeout=600)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout  # the whole session, byte for byte (every clock read the same)
    if mode == "mmode":
        _step_back_and_forth(recording, _end_icount(recording) // 2)


def _step_back_and_forth(recording: Path, middle: int) -> None:
    """In the middle of the session (U-Boot polling mtime), 150 stepi then 150 reverse-stepi through gdb: every
    state on the way back is the one seen on the way forward (the loads of mtime among them)."""
    require_gdb()
    server = ServerProcess(recording, command="replay")
    gdb = Gdb(uboot.UBOOT_ELF)
    try:
        gdb.connect(server.port)
        gdb.seek(middle)
        forward = []
        for _ in range(150):
            forward.append((gdb.icount(), gdb.registers()))
            gdb.stepi()
        backward = []
        for _ in range(150):
            gdb.stepi(reverse=True)
            backward.append((gdb.icount(), gdb.registers()))
        assert backward == forward[::-1]
        assert len({regs["pc"] for _, regs in forward}) > 10  # it went somewhere: the polling loop's code
    finally:
        gdb.close()
        server.stop()
