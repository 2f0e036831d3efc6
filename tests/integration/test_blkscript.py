"""The blkscript guest (a virtio-blk driver running a request script from the UART) on QEMU and chronicorn.

- parity: one script gives byte-identical UART output on QEMU 7.2 and ``chronicorn run`` (rv32/rv64, legacy/
  modern), and chronicorn's ``overlay=OUT`` is byte for byte the disk QEMU leaves when it writes a copy of the
  image. A Python model of the script (:class:`ScriptModel`) says what both must print and write, so a bug
  shared by the guest and both machines would still show.
- a property: random scripts (reads, writes, flushes, write-zeroes, repeated reads and writes, overlapping,
  up to 64 KiB a request, some past the end of the disk) recorded with ``--drive IMG,overlay=A`` replay with
  ``--drive IMG,overlay=B`` to the same output, A == B == the model's disk, the image untouched, and one
  IoCompletion event per request. The guest has one request in flight at a time and notifies once per
  request (it polls the used ring before the next), so requests, notifies and completions are the same
  number: the guest's own count (its ``summary`` line), which the model predicts too.
- a changed image is refused at replay (exit 2, one line naming the drive);
- a recorder killed with SIGKILL in the middle of megabytes of disk I/O leaves a file that replays its intact
  part (exit 0) to a prefix of what the recorder printed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import (
    INTERFACES_MODERN_SLOW,
    ROOT,
    XLENS_RV64_SLOW,
    guest,
    require_tool,
    run_cli,
    wait_for_growth,
)

SECTOR = 512
MAX_SECTORS = 128  # the guest's buffer: 64 KiB a request
MAX_WRITE_ZEROES_SECTORS = 0x3F_FFFF  # QEMU 7.2's max_write_zeroes_sectors
U64 = (1 << 64) - 1
INTERFACES = {"legacy": 1, "modern": 2}
FEATURES = {"legacy": "0x31006ed4", "modern": "0x30006e54 0x00000101"}  # what QEMU 7.2 offers (README)


# ---- the images -----------------------------------------------------------------------------------------
def image_bytes(sectors: int) -> bytes:
    """A deterministic disk: every 32 bytes a SHA-256, so every sector differs from every other one."""
    return b"".join(hashlib.sha256(i.to_bytes(4, "little")).digest() for i in range(sectors * SECTOR // 32))


def make_image(path: Path, sectors: int) -> Path:
    path.write_bytes(image_bytes(sectors))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- what the guest does (blkscript.c), in Python ---------------------------------------------------------
def pattern(seed: int, size: int) -> tuple[bytes, int]:
    """The guest's write pattern: ``size`` bytes of xorshift32 from ``seed``; also the state after them."""
    x = (seed & 0xFFFF_FFFF) ^ 0x9E37_79B9 or 1
    words = []
    for _ in range(size // 4):
        x ^= (x << 13) & 0xFFFF_FFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFF_FFFF
        words.append(x)
    return b"".join(w.to_bytes(4, "little") for w in words), x


def continue_pattern(state: int, size: int) -> tuple[bytes, int]:
    """More of the stream from ``state`` (the state is never 0, so pattern() with the seed that gives it)."""
    return pattern(state ^ 0x9E37_79B9, size)


@dataclass
class ScriptModel:
    """The disk and the UART output the guest produces for a script (the device as QEMU 7.2's)."""

    disk: bytearray
    interface: str = "legacy"
    readonly: bool = False  # writes and write-zeroes fail (IOERR); the device offers RO
    out: list[str] = field(default_factory=list)
    requests: int = 0
    errors: int = 0
    read: int = 0
    written: int = 0
    irqs: int = 0
    irq_mode: bool = False
    latched: bool = False  # the PLIC's pending bit for the disk's IRQ: QEMU 7.2 keeps it until claimed

    def __post_init__(self) -> None:
        self.sectors = len(self.disk) // SECTOR
        self.out += [
            "blkscript start",
            f"virtio-mmio slot 7 version {INTERFACES[self.interface]}",
            f"device features {self._features()}",
            "flush offered",
            "write-zeroes offered",
            f"capacity {self.sectors} sectors",
            "ready",
        ]

    def _features(self) -> str:
        words = FEATURES[self.interface].split()
        if self.readonly:
            words[0] = f"{int(words[0], 16) | 1 << 5:#010x}"  # VIRTIO_BLK_F_RO
        return " ".join(words)

    def output(self) -> bytes:
        return "".join(line + "\n" for line in self.out).encode()

    def _range_ok(self, sector: int, count: int) -> bool:
        return sector <= self.sectors and count <= self.sectors - sector

    def _done(self, status: int) -> int:
        self.requests += 1
        self.errors += status != 0
        if self.irq_mode:
            self.irqs += 1  # claimed
        else:
            self.latched = True  # raised (and lowered again by the guest's InterruptStatus ack), not claimed
        return status

    def _read(self, sector: int, count: int) -> tuple[int, bytes]:
        if self._range_ok(sector, count):
            self.read += count * SECTOR
            return self._done(0), bytes(self.disk[sector * SECTOR : (sector + count) * SECTOR])
        return self._done(1), b"\xa5" * (count * SECTOR)

    def _write(self, sector: int, data: bytes) -> int:
        if self._range_ok(sector, len(data) // SECTOR) and not self.readonly:
            self.disk[sector * SECTOR : sector * SECTOR + len(data)] = data
            self.written += len(data)
            return self._done(0)
        return self._done(1)

    @staticmethod
    def _lines(flags: list[int]) -> bool:
        """R/W's optional FLAGS (default 3): bit 1, a line per request."""
        return not flags or bool(flags[0] & 2)

    @staticmethod
    def _crc(flags: list[int], crc: int) -> str:
        """Bit 0: the CRC over all the data."""
        return f"{crc:08x}" if not flags or flags[0] & 1 else "-"

    def run(self, line: str) -> None:
        words = line.split()
        if not words:
            return
        cmd, *rest = words
        args = [int(a) for a in rest]
        if cmd == "r":
            sector, count = args
            status, data = self._read(sector, count)
            self.out.append(f"{line} status {status} len {count * SECTOR + 1} crc {zlib.crc32(data):08x}")
        elif cmd == "w":
            sector, count, seed = args
            data, _ = pattern(seed, count * SECTOR)
            status = self._write(sector, data)
            self.out.append(f"{line} status {status} len 1 crc {zlib.crc32(data):08x}")
        elif cmd == "f":
            self.out.append(f"f status {self._done(0)} len 1")
        elif cmd == "z":
            sector, count = args
            ok = count <= MAX_WRITE_ZEROES_SECTORS and self._range_ok(sector, count) and not self.readonly
            if ok:
                self.disk[sector * SECTOR : (sector + count) * SECTOR] = bytes(count * SECTOR)
            self.out.append(f"{line} status {self._done(0 if ok else 1)} len 1")
        elif cmd == "R":
            sector, count, times, *flags = args
            crc = errors = 0
            for i in range(times):
                s = (sector + i * count) & U64
                status, data = self._read(s, count)
                errors += status != 0
                crc = zlib.crc32(data, crc)
                if self._lines(flags):
                    self.out.append(f"R#{i} sector {s} status {status} len {count * SECTOR + 1}")
            self.out.append(f"{line} done errors {errors} crc {self._crc(flags, crc)}")
        elif cmd == "W":
            sector, count, times, seed, *flags = args
            crc = errors = 0
            state = None
            for i in range(times):
                s = (sector + i * count) & U64
                if state is None:
                    data, state = pattern(seed, count * SECTOR)
                else:
                    data, state = continue_pattern(state, count * SECTOR)
                crc = zlib.crc32(data, crc)
                status = self._write(s, data)
                errors += status != 0
                if self._lines(flags):
                    self.out.append(f"W#{i} sector {s} status {status} len 1")
            self.out.append(f"{line} done errors {errors} crc {self._crc(flags, crc)}")
        elif cmd == "i":
            if args[0] and not self.irq_mode:
                self.out.append(f"i 1 stale {int(self.latched)}")
                self.latched = False
            else:
                self.out.append(f"i {int(args[0] != 0)}")
            self.irq_mode = args[0] != 0
        elif cmd == "q":
            self.out.append(f"summary requests {self.requests} errors {self.errors} read {self.read} "
                            f"written {self.written} irqs {self.irqs}")  # fmt: skip
        else:
            raise ValueError(f"the model does not know {line!r}")


def model(image: bytes, script: list[str], interface: str = "legacy") -> ScriptModel:
    m = ScriptModel(bytearray(image), interface)
    for line in script:
        m.run(line)
    return m


# ---- running it -------------------------------------------------------------------------------------------
def qemu_command(xlen: str, interface: str, image: Path, snapshot: bool) -> list[str]:
    binary = f"qemu-system-riscv{xlen[2:]}"
    require_tool(shutil.which(binary), f"{binary} not installed (Debian: qemu-system-misc)")
    return [
        binary, "-M", "virt", "-m", "128M", "-bios", "none", "-nographic",
        "-kernel", str(guest(xlen, "blkscript")),
        "-drive", f"if=none,file={image},format=raw,id=d0" + (",snapshot=on" if snapshot else ""),
        "-device", "virtio-blk-device,drive=d0",
        *(["-global", "virtio-mmio.force-legacy=false"] if interface == "modern" else []),
    ]  # fmt: skip


def run_qemu(xlen: str, interface: str, image: Path, script: bytes, snapshot: bool = True,
             readonly: bool = False) -> bytes:  # fmt: skip
    cmd = qemu_command(xlen, interface, image, snapshot)
    if readonly:
        cmd = [arg + ",readonly=on" if arg.startswith("if=none,") else arg for arg in cmd]
    proc = subprocess.run(cmd, input=script, capture_output=True, timeout=120)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr.decode(errors="replace"))
    return proc.stdout


def run_chronicorn(xlen: str, interface: str, drive: str, script: bytes) -> bytes:
    proc = run_cli("run", str(guest(xlen, "blkscript")), "--drive", drive, "--virtio", interface, stdin=script)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr.decode(errors="replace"))
    return proc.stdout


def script_bytes(lines: list[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


# ---- parity with QEMU -------------------------------------------------------------------------------------
PARITY_SECTORS = 1000  # 500 KiB: no power of two, requests of 64 KiB run past its end
PARITY_SCRIPT = [  # after "i 1" (completions by interrupt: wfi, PLIC claim), malformed lines and "r 0 1"
    "r 0 0", "r 7 128",
    "w 3 2 7", "r 2 4", "f",
    "w 10 128 4294967301",            # SEED mod 2^32 = 5
    "w 70 128 5", "r 10 128", "r 64 128",  # overlapping writes, then reads across both
    "z 4 1", "r 0 8", "z 200 0", "z 999 1", "z 999 2", "z 0 4194304",  # write-zeroes: last sector, past it, over max
    "r 999 1", "r 999 2", "r 1000 0", "r 1001 0", "r 18446744073709551615 1",  # the end of the disk
    "w 999 1 3", "w 999 2 3", "w 1000 0 9", "w 1001 0 9",
    "i 0",  # polling the used ring from here on
    "R 0 128 9", "R 900 64 3 2", "R 18446744073709551614 1 3",  # runs past the end; wraps past 2^64
    "W 500 16 5 11", "W 950 32 3 12 1", "R 0 128 8 0", "r 500 80", "r 950 50",
    "f", "q",
]  # fmt: skip
BAD_LINES = ["x", "rr 0 1", "r 1", "r 0 129", "r -1 1", "w 0 1", "R 0 1", "z 0 4294967296", "   ", "\t"]
BAD_REPLIES = ["? unknown command", "? unknown command", "? wrong number of arguments", "? count over 128",
               "? bad number", "? wrong number of arguments", "? wrong number of arguments",
               "? count over 2^32-1"]  # fmt: skip


def parity_script() -> bytes:
    """The script: "i 1", some malformed lines and CRLF line ends, then PARITY_SCRIPT."""
    text = "i 1\n" + "\n".join(BAD_LINES[:5]) + "\r\n" + "\n".join(BAD_LINES[5:]) + "\n" + "r 0 1\r\n"
    return text.encode() + script_bytes(PARITY_SCRIPT)


def parity_expected(image: bytes, interface: str) -> ScriptModel:
    m = ScriptModel(bytearray(image), interface)
    m.run("i 1")
    m.out += BAD_REPLIES
    for line in ["r 0 1", *PARITY_SCRIPT]:
        m.run(line)
    return m


@pytest.mark.qemu
@pytest.mark.parametrize("interface", INTERFACES_MODERN_SLOW)
@pytest.mark.parametrize("xlen", XLENS_RV64_SLOW)
def test_same_uart_output_as_qemu(xlen: str, interface: str, tmp_path: Path) -> None:
    image = make_image(tmp_path / "disk.img", PARITY_SECTORS)
    script = parity_script()
    expected = parity_expected(image.read_bytes(), interface).output()
    on_qemu = run_qemu(xlen, interface, image, script)
    assert on_qemu == expected  # the guest, the model and QEMU agree
    assert run_chronicorn(xlen, interface, str(image), script) == on_qemu
    assert image.read_bytes() == image_bytes(PARITY_SECTORS)


@pytest.mark.qemu
@pytest.mark.parametrize("interface", INTERFACES_MODERN_SLOW)
@pytest.mark.parametrize("xlen", XLENS_RV64_SLOW)
def test_overlay_is_the_disk_qemu_writes(xlen: str, interface: str, tmp_path: Path) -> None:
    """QEMU writes a copy of the image (no snapshot=on); chronicorn's overlay=OUT must be that file."""
    image = make_image(tmp_path / "disk.img", PARITY_SECTORS)
    qemu_disk = tmp_path / "qemu.img"
    shutil.copyfile(image, qemu_disk)
    script = parity_script()
    on_qemu = run_qemu(xlen, interface, qemu_disk, script, snapshot=False)
    overlay = tmp_path / "overlay.img"
    assert run_chronicorn(xlen, interface, f"{image},overlay={overlay}", script) == on_qemu
    expected_disk = bytes(parity_expected(image.read_bytes(), interface).disk)
    assert qemu_disk.read_bytes() == expected_disk != image.read_bytes()
    assert overlay.read_bytes() == qemu_disk.read_bytes()
    assert image.read_bytes() == image_bytes(PARITY_SECTORS)  # never written


@pytest.mark.qemu
@pytest.mark.parametrize("xlen", XLENS_RV64_SLOW)
def test_plic_keeps_a_raised_irq_pending(xlen: str, tmp_path: Path) -> None:
    """A polled request raises the disk's IRQ and the guest lowers it again (InterruptStatus ack) without
    claiming it. QEMU 7.2 (Debian's 7.2.22: "hw/intc: Don't clear pending bits on IRQ lowering", QEMU commit
    a84be2baa9, in the 7.2 stable series) keeps the PLIC's pending bit set until it is claimed, so the guest
    claims one stale interrupt when it turns interrupts on ("i 1 stale 1"); a PLIC whose pending bit follows
    the line offers nothing ("stale 0")."""
    image = make_image(tmp_path / "disk.img", 64)
    lines = ["r 0 1", "i 1", "r 1 1", "i 0", "w 2 1 1", "f", "i 1", "i 0", "i 1", "q"]
    expected = model(image.read_bytes(), lines).output()
    assert b"i 1 stale 1\n" in expected and b"i 1 stale 0\n" in expected
    assert run_qemu(xlen, "legacy", image, script_bytes(lines)) == expected
    assert run_chronicorn(xlen, "legacy", str(image), script_bytes(lines)) == expected


@pytest.mark.qemu
@pytest.mark.parametrize("interface", INTERFACES_MODERN_SLOW)
def test_a_read_only_drive_as_qemu(interface: str, tmp_path: Path) -> None:
    """readonly=on: the RO feature, every write and write-zeroes IOERR, reads and flushes fine."""
    image = make_image(tmp_path / "disk.img", 64)
    lines = ["r 0 1", "w 0 1 1", "z 0 1", "z 64 1", "f", "W 0 8 2 3", "w 64 0 1", "r 0 1", "q"]
    m = ScriptModel(bytearray(image.read_bytes()), interface, readonly=True)
    for line in lines:
        m.run(line)
    assert m.errors == 6 and m.written == 0
    on_qemu = run_qemu("rv64", interface, image, script_bytes(lines), snapshot=False, readonly=True)
    assert on_qemu == m.output()
    overlay = tmp_path / "overlay.img"
    assert run_chronicorn("rv64", interface, f"{image},readonly=on,overlay={overlay}", script_bytes(lines)) == on_qemu
    assert overlay.read_bytes() == image.read_bytes() == image_bytes(64)


# ---- record, replay, overlays: a property -----------------------------------------------------------------
PROPERTY_SECTORS = 256  # 128 KiB: two 64 KiB requests cover it, so requests overlap and run past the end


def sectors() -> st.SearchStrategy[int]:
    """Inside the disk or just past it; one in ten near 2^64 (R/W wrap around to 0)."""
    inside, near_max = st.integers(0, PROPERTY_SECTORS + 4), st.integers(U64 - 300, U64)
    return st.integers(0, 9).flatmap(lambda k: near_max if k == 0 else inside)


def counts() -> st.SearchStrategy[int]:
    return st.one_of(st.integers(0, MAX_SECTORS), st.sampled_from([1, 8, MAX_SECTORS]))


def scripts() -> st.SearchStrategy[list[str]]:
    """Requests, the first ones waited for by interrupt or by polling; "i 0" (back to polling) anywhere. Never
    "i 1" after a polled request (its "stale" count differs: test_plic_keeps_a_raised_irq_pending)."""
    start = st.sampled_from([[], ["i 1"]])
    return st.builds(lambda a, b: a + b, start, st.lists(st.one_of(commands(), st.just("i 0")), min_size=1,
                                                         max_size=12))  # fmt: skip


def commands() -> st.SearchStrategy[str]:
    seeds = st.integers(0, U64)
    flags = st.sampled_from(["", " 0", " 1", " 2", " 3", " 7"])
    zero_counts = st.one_of(st.integers(0, PROPERTY_SECTORS + 8), st.just(MAX_WRITE_ZEROES_SECTORS + 1))
    return st.one_of(
        st.builds("r {} {}".format, sectors(), counts()),
        st.builds("w {} {} {}".format, sectors(), counts(), seeds),
        st.just("f"),
        st.builds("z {} {}".format, sectors(), zero_counts),
        st.builds("R {} {} {}{}".format, sectors(), counts(), st.integers(0, 4), flags),
        st.builds("W {} {} {} {}{}".format, sectors(), counts(), st.integers(0, 4), seeds, flags),
    )


def record_and_replay(xlen: str, interface: str, image: Path, lines: list[str], work: Path) -> None:
    """The property for one script (``q`` appended)."""
    lines = [*lines, "q"]
    image_sha = sha256(image)
    expected = model(image.read_bytes(), lines, interface)
    script = work / "script.txt"
    script.write_bytes(script_bytes(lines))
    rec, a, b = work / "r.chrec", work / "a.img", work / "b.img"
    recorded = run_cli("record", str(guest(xlen, "blkscript")), "-o", str(rec), "--uart-input", str(script),
                       "--drive", f"{image},overlay={a}", "--virtio", interface)  # fmt: skip
    assert recorded.returncode == 0, recorded.stderr.decode(errors="replace")
    assert recorded.stdout == expected.output()
    replayed = run_cli("replay", str(rec), "--drive", f"{image},overlay={b}")
    assert replayed.returncode == 0, replayed.stderr.decode(errors="replace")
    assert replayed.stdout == recorded.stdout
    assert a.read_bytes() == b.read_bytes() == bytes(expected.disk)
    assert sha256(image) == image_sha
    events = run_cli("events", str(rec))
    assert events.returncode == 0
    completions = sum(" IoCompletion " in line for line in events.stdout.decode().splitlines())
    summary = re.search(rb"summary requests (\d+) ", recorded.stdout)
    assert summary is not None and completions == int(summary[1]) == expected.requests


@pytest.mark.parametrize("xlen", XLENS_RV64_SLOW)
def test_a_script_records_and_replays_with_the_same_disk(xlen: str, tmp_path: Path) -> None:
    """One handpicked script of the property (fast): overlapping writes, the end of the disk, repeats."""
    image = make_image(tmp_path / "disk.img", PROPERTY_SECTORS)
    lines = ["i 1", "w 200 128 1", "r 190 20", "z 250 10", "W 100 64 3 2", "i 0", "R 0 128 3", "f", "r 255 1",
             "z 256 1"]  # fmt: skip
    record_and_replay(xlen, "modern" if xlen == "rv32" else "legacy", image, lines, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("interface", INTERFACES_MODERN_SLOW)
@pytest.mark.parametrize("xlen", XLENS_RV64_SLOW)
def test_random_scripts_record_and_replay_with_the_same_disk(xlen: str, interface: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        image = make_image(Path(tmp) / "disk.img", PROPERTY_SECTORS)

        @settings(max_examples=15, derandomize=True, database=None, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
        @given(scripts())
        def check(lines: list[str]) -> None:
            with tempfile.TemporaryDirectory(dir=tmp) as work:
                record_and_replay(xlen, interface, image, lines, Path(work))

        check()


# ---- a changed image --------------------------------------------------------------------------------------
@pytest.mark.parametrize("change", ["one byte", pytest.param("shorter", marks=pytest.mark.slow)])
def test_replay_refuses_a_changed_image(change: str, tmp_path: Path) -> None:
    image = make_image(tmp_path / "disk.img", 64)
    script = tmp_path / "script.txt"
    script.write_bytes(script_bytes(["w 1 1 1", "r 0 2", "q"]))
    rec = tmp_path / "r.chrec"
    recorded = run_cli("record", str(guest("rv32", "blkscript")), "-o", str(rec), "--uart-input", str(script),
                       "--drive", str(image))  # fmt: skip
    assert recorded.returncode == 0 and image.read_bytes() == image_bytes(64)
    assert run_cli("replay", str(rec)).returncode == 0  # the same image replays
    data = bytearray(image.read_bytes())
    if change == "one byte":
        data[SECTOR + 5] ^= 1
    else:
        del data[-SECTOR:]
    image.write_bytes(bytes(data))
    proc = run_cli("replay", str(rec))
    err = proc.stderr.decode()
    assert proc.returncode == 2 and proc.stdout == b""
    assert len(err.splitlines()) == 1 and "drive 1" in err and str(image) in err and "Traceback" not in err


# ---- SIGKILL in the middle of disk I/O ----------------------------------------------------------------------
KILL_SECTORS = 4096  # 2 MiB: each command of the script reads or writes all of it, 32 requests of 64 KiB


def disk_after_writes(image: bytes, n: int) -> bytes:
    """The disk after the first ``n`` write requests of the killed script (W commands with seeds 0, 2, 4...)."""
    chunk = MAX_SECTORS * SECTOR
    done, partial = divmod(n, len(image) // chunk)
    before = image if done == 0 else pattern(2 * (done - 1), len(image))[0]
    return pattern(2 * done, partial * chunk)[0] + before[partial * chunk :]


@pytest.mark.slow
def test_a_recorder_killed_during_disk_io_leaves_a_replayable_prefix(tmp_path: Path) -> None:
    """Reads and writes of 2 MiB each (64 KiB requests), far more of them than run before the kill."""
    image = make_image(tmp_path / "disk.img", KILL_SECTORS)
    script = tmp_path / "script.txt"
    script.write_bytes(script_bytes([f"{'R 0 128 32' if i % 2 else f'W 0 128 32 {i}'}" for i in range(2000)]))
    rec = tmp_path / "killed.chrec"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gdbstub.cli", "record", str(guest("rv64", "blkscript")), "-o", str(rec),
         "--uart-input", str(script), "--drive", str(image)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    seen = b""
    try:
        while seen.count(b"\nR 0 128 32 done") < 2:  # two commands of each kind in: 8 MiB of I/O done
            line = proc.stdout.readline()
            assert line, f"the recorder ended early: {proc.stderr.read()!r}"
            seen += line
        # A chunk written after these lines were printed: the file holds their history.
        wait_for_growth(rec, rec.stat().st_size)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate()
    printed = seen + rest
    assert proc.returncode == -signal.SIGKILL

    overlay = tmp_path / "after.img"
    replayed = run_cli("replay", str(rec), "--drive", f"{image},overlay={overlay}", timeout=300)
    err = replayed.stderr.decode()
    assert replayed.returncode == 0, err
    assert re.search(r"replayed the intact part to icount \d+", err) and "Traceback" not in err
    assert printed.startswith(replayed.stdout)
    assert replayed.stdout.count(b"\nR 0 128 32 done") >= 2 and b"summary" not in printed
    # The disk as the intact part leaves it: every write whose line was printed, and perhaps the next one
    # (completed, its line not printed yet). One request in flight at a time: never anything else.
    writes = replayed.stdout.count(b"\nW#")
    assert writes >= 64  # W 0, R, W 2, R: two whole-disk writes at least
    original = image_bytes(KILL_SECTORS)
    assert overlay.read_bytes() in (disk_after_writes(original, writes), disk_after_writes(original, writes + 1))
    assert image.read_bytes() == original
