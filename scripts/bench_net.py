#!/usr/bin/env python3
"""Guest network speed: Debian's U-Boot fetching a file by TFTP on chronicorn (record, replay) and QEMU 7.2.

Both run U-Boot (``u-boot-qemu``, M-mode ``uboot.elf``) on the user network with ``tftp=DIR`` (QEMU:
``-netdev user,id=n0,tftp=DIR -device virtio-net-device,netdev=n0``; chronicorn: ``record ... --net
user,tftp=DIR``), stop autoboot, ``setenv autoload no; dhcp`` and then time one ``tftpboot ADDR big.bin`` of
--mib MiB from the moment the command is sent to the next prompt (wall time on the host; the boot is not
counted). U-Boot's TFTP asks for 1468-byte blocks and slirp (and chronicorn's user network) answers 1428: one
data frame and one ACK per block. Frames per second and bytes per second count both directions (from
chronicorn's recording: its inbound frames are logged; every one was answered by one outbound ACK).
``replay`` times the whole replay of that recording (it has no prompt to wait for) minus the same for a
recording of the session without the transfer. Also: the recording's size per frame of the transfer (the
difference between the two recordings, per frame). Medians over --runs rounds.

    .venv/bin/python scripts/bench_net.py [--mib 4] [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from replay.events import NetFrame  # noqa: E402
from replay.recording import load_recording  # noqa: E402
from tests import uboot  # noqa: E402

BLOCK = 1428  # slirp's TFTP_BLOCKSIZE_MAX (U-Boot asks for 1468)


def session(argv: list[str], mib: int, transfer: bool) -> float:
    """Boot U-Boot, DHCP, time the transfer (0 when not ``transfer``), power off."""
    with uboot.UbootSession(argv, cwd=ROOT, session_timeout=1800, boot_timeout=600) as s:
        s.run(["setenv autoload no", "dhcp"], timeout=600)
        took = 0.0
        if transfer:
            start = time.monotonic()
            out = s.command("tftpboot 0x82000000 big.bin", timeout=1800)
            took = time.monotonic() - start
            if f"Bytes transferred = {mib << 20}" not in out:
                raise SystemExit(f"the transfer failed:\n{out[-2000:]}")
        if s.close() != 0:
            raise SystemExit(f"U-Boot did not power off cleanly: {s.stderr[-2000:]}")
    return took


def replay_time(recording: Path) -> float:
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "gdbstub.cli", "replay", str(recording)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800)  # fmt: skip
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        served = Path(tmp) / "tftp"
        served.mkdir()
        (served / "big.bin").write_bytes(random.Random(1).randbytes(args.mib << 20))
        qemu = ["qemu-system-riscv64", "-M", "virt", "-m", "128M", "-nographic", "-bios", str(uboot.UBOOT_ELF),
                "-netdev", f"user,id=n0,tftp={served}", "-device", "virtio-net-device,netdev=n0"]  # fmt: skip

        def ours(recording: Path) -> list[str]:
            return [sys.executable, "-m", "gdbstub.cli", "record", str(uboot.UBOOT_ELF), "-o", str(recording),
                    "--uart-input", "-", "--net", f"user,tftp={served}"]  # fmt: skip

        times: dict[str, list[float]] = {"qemu": [], "chronicorn record": [], "chronicorn replay": []}
        full, empty = Path(tmp) / "full.chrec", Path(tmp) / "empty.chrec"
        session(ours(empty), args.mib, transfer=False)
        baseline = replay_time(empty)
        for _ in range(args.runs):
            times["qemu"].append(session(qemu, args.mib, transfer=True))
            times["chronicorn record"].append(session(ours(full), args.mib, transfer=True))
            times["chronicorn replay"].append(replay_time(full) - baseline)
        with full.open("rb") as stream:
            inbound = [e for e in load_recording(stream).inputs if isinstance(e, NetFrame)]
        with empty.open("rb") as stream:
            inbound_empty = sum(isinstance(e, NetFrame) for e in load_recording(stream).inputs)
        frames = 2 * (len(inbound) - inbound_empty)  # each inbound frame of the transfer was answered by one ACK
        wire = sum(len(e.data) for e in inbound) + 60 * len(inbound)  # data frames + minimum-size ACKs (approx.)
        per_frame = (full.stat().st_size - empty.stat().st_size) / max(1, frames // 2)
    print(f"U-Boot tftpboot of {args.mib} MiB ({frames} frames both ways, ~{wire / 2**20:.2f} MiB on the wire), "
          f"median of {args.runs}")
    print(f"{'':20} {'seconds':>9} {'frames/s':>10} {'MiB/s':>8}")
    for name, values in times.items():
        t = statistics.median(values)
        print(f"{name:20} {t:9.2f} {frames / t:10.0f} {wire / 2**20 / t:8.2f}")
    print(f"recording: {per_frame:.1f} bytes per inbound frame of the transfer (zstandard; the frames are logged)")


if __name__ == "__main__":
    main()
