"""Drive Debian's U-Boot (u-boot-qemu) on its serial console, expect-style, on QEMU or on chronicorn.

``UbootSession`` runs any command whose stdin/stdout is U-Boot's UART (``qemu-system-riscv64 -nographic``,
``chronicorn record --uart-input -``), stops autoboot and runs commands at the ``=> `` prompt, each returning
exactly what U-Boot printed for it. ``make_ext2_image`` builds the disk the commands read (byte-identical at
every build), ``UBOOT_VIRTIO_COMMANDS`` exercises U-Boot's virtio-blk driver and ext2 reader on it, and
``mask_timing`` blanks the only printed values that measure time.

Every wait is on output actually arriving (a condition variable the reader thread signals); timeouts only turn
a session that stops making progress into a failure, with the transcript so far in the message.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UBOOT_ELF = Path("/usr/lib/u-boot/qemu-riscv64/uboot.elf")  # Debian's u-boot-qemu (U-Boot 2023.01, M-mode)
PROMPT = "=> "
AUTOBOOT = "Hit any key to stop autoboot"

# --- the disk -----------------------------------------------------------------------------------------------

FS_UUID = "c4c0c0a1-0000-4000-8000-000000000001"
FS_HASH_SEED = "c4c0c0a1-0000-4000-8000-000000000002"
# Every timestamp in the image. Not 0: e2fsprogs 1.47.0 reads E2FSPROGS_FAKE_TIME=0 as "not set" and uses the
# clock (its superblock times then change every second), and it does not read SOURCE_DATE_EPOCH at all (set
# anyway, for the versions that do).
FS_TIME = 1
HELLO = b"Hello from chronicorn's ext2 disk!\nThe second line.\n"
BIG_SIZE = 256 * 1024


def big_file() -> bytes:
    """256 KiB from a seeded PRNG: the same bytes every time, on every host and Python."""
    return random.Random(0xC4C0).randbytes(BIG_SIZE)


def uboot_files() -> dict[str, bytes]:
    """The files on the disk the U-Boot session reads (paths relative to the root; a '/' makes directories)."""
    return {
        "hello.txt": HELLO,
        "big.bin": big_file(),
        "dir/inner.txt": b"inside a subdirectory\n",
        "dir/empty": b"",
    }


def e2fs_tool(name: str) -> str | None:
    """The path of an e2fsprogs program (in /usr/sbin, which a normal user's PATH may not hold), or None."""
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"]))


def _e2fs(name: str) -> str:
    tool = e2fs_tool(name)
    assert tool is not None, f"{name} not found: install e2fsprogs"
    return tool


def _e2fs_env() -> dict[str, str]:
    return {**os.environ, "E2FSPROGS_FAKE_TIME": str(FS_TIME), "SOURCE_DATE_EPOCH": str(FS_TIME), "TZ": "UTC"}


def make_ext2_image(path: Path, files: Mapping[str, bytes], size_kib: int = 4096) -> Path:
    """Write an ext2 image holding ``files`` to ``path``; the same ``files`` always give the same bytes.

    mke2fs -d copies the files from a directory tree, and with them each inode's owner, mode and times from
    the host: owner and mode are set on the tree, but e2fsprogs 1.47.0 copies the tree's ctime and atime too
    (the time the tree was written, which no one can set), so a debugfs pass sets every copied inode's times
    and owner afterwards. The UUID, the directory hash seed and the filesystem's own times are fixed.
    """
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="chronicorn-ext2-") as tmp:
        src = Path(tmp) / "root"
        src.mkdir()
        copied: set[str] = set()
        for name, data in files.items():
            parts = Path(name).parts
            assert parts and not Path(name).is_absolute() and ".." not in parts, name
            for depth in range(1, len(parts)):
                (src.joinpath(*parts[:depth])).mkdir(exist_ok=True)
                copied.add("/" + "/".join(parts[:depth]))
            (src / name).write_bytes(data)
            copied.add("/" + "/".join(parts))
        for rel in sorted(copied, key=len, reverse=True):  # children first: setting times does not touch parents
            p = src / rel.lstrip("/")
            p.chmod(0o755 if p.is_dir() else 0o644)
            os.utime(p, (FS_TIME, FS_TIME))
        src.chmod(0o755)
        os.utime(src, (FS_TIME, FS_TIME))
        path.unlink(missing_ok=True)
        subprocess.run(
            [_e2fs("mke2fs"), "-q", "-t", "ext2", "-d", str(src), "-b", "1024", "-L", "chronicorn",
             "-U", FS_UUID, "-E", f"root_owner=0:0,hash_seed={FS_HASH_SEED}", "-F", str(path), str(size_kib)],
            env=_e2fs_env(), check=True, capture_output=True,
        )  # fmt: skip
        script = Path(tmp) / "debugfs.cmds"
        fields = [("uid", 0), ("gid", 0)] + [(f, FS_TIME) for f in ("atime", "ctime", "mtime", "crtime")]
        script.write_text("".join(f"sif {rel} {field} {value}\n" for rel in sorted(copied) for field, value in fields))
        subprocess.run(
            [_e2fs("debugfs"), "-w", "-f", str(script), str(path)], env=_e2fs_env(), check=True, capture_output=True
        )
    return path


def inode_times(image: Path, name: str) -> dict[str, int]:
    """The times (seconds) and owner debugfs reads from inode ``name`` of ``image``."""
    out = subprocess.run(
        [_e2fs("debugfs"), "-R", f"stat {name}", str(image)],
        env=_e2fs_env(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    values = {m[0]: int(m[1], 16) for m in re.findall(r"\b(ctime|atime|mtime|crtime): 0x([0-9a-f]+):", out)}
    owner = re.search(r"User:\s+(\d+)\s+Group:\s+(\d+)", out)
    assert owner is not None, out
    values["uid"], values["gid"] = int(owner[1]), int(owner[2])
    return values


# --- the commands -------------------------------------------------------------------------------------------

LOAD_ADDR = 0x82000000
BIG_ADDR = 0x86000000
DISK_BLOCKS = 8192  # 4 MiB in 512-byte sectors
# In order: the device (U-Boot has probed it before its prompt, so "virtio scan" prints nothing), the ext2
# filesystem (listings, a file loaded whole and from an offset, errors), raw sectors (reads, a write then the
# read that sees it, the last sector and a read past the end, which QEMU fails with VIRTIO_BLK_S_IOERR: U-Boot
# prints -5, -EIO), and a 256 KiB file (a read of many descriptors). Sector 8 (4 KiB in) is in the ext2
# image's reserved GDT blocks, which U-Boot never reads; "virtio write" goes to QEMU's snapshot (chronicorn's
# overlay), never to the image file.
UBOOT_VIRTIO_COMMANDS = [
    "virtio scan",
    "virtio info",
    "virtio device 0",
    "virtio device 1",
    "virtio part 0",
    "fstype virtio 0 fs; printenv fs",
    "ls virtio 0",
    "ls virtio 0 /dir",
    "ls virtio 0 /nodir",
    "size virtio 0 hello.txt; printenv filesize",
    f"load virtio 0 {LOAD_ADDR:#x} hello.txt",
    f"crc32 {LOAD_ADDR:#x} ${{filesize}}",
    f"md.b {LOAD_ADDR:#x} 0x40",
    "load virtio 0 0x82100000 dir/inner.txt 6 4",
    "md.b 0x82100000 8",
    "load virtio 0 0x87000000 missing.txt",
    "virtio read 0x83000000 0 2",
    "crc32 0x83000000 0x400",
    "virtio read 0x85000000 8 1",
    "mw.b 0x84000000 0xa5 0x200",
    "cmp.b 0x84000000 0x85000000 0x200",
    "virtio write 0x84000000 8 1",
    "virtio read 0x85000000 8 1",
    "cmp.b 0x84000000 0x85000000 0x200",
    f"virtio read 0x85000000 {DISK_BLOCKS - 1:#x} 1",
    f"virtio read 0x85000000 {DISK_BLOCKS - 1:#x} 2",
    f"load virtio 0 {BIG_ADDR:#x} big.bin",
    f"crc32 {BIG_ADDR:#x} ${{filesize}}",
]

# U-Boot's load prints "N bytes read in T ms (R/s)", R as print_size gives it ("25.4 KiB", "250 MiB",
# "0 Bytes"), and no "(R/s)" at all when T is 0. T and R measure time: U-Boot reads its timer (the CLINT's
# mtime) around the read, which on QEMU runs on host time (how long the read took on this host, this run) and
# on chronicorn on the instruction count (icount << shift ns). Neither is a property of the guest's behaviour,
# so "in T ms (R)" (or "in T ms" with no rate) becomes "in T ms (R)". Nothing else is masked: N is kept.
_TIMING = re.compile(r"(\d+ bytes read in )\d+ ms(?: \([\d.]+ (?:Bytes|[KMGTPE]iB)/s\))?")


def mask_timing(text: str) -> str:
    """``text`` with the time and rate of U-Boot's "N bytes read in T ms (R/s)" lines replaced by T and R."""
    return _TIMING.sub(r"\1T ms (R)", text)


# --- QEMU ---------------------------------------------------------------------------------------------------


def qemu_uboot_argv(disk_image: Path, legacy: bool = True) -> list[str]:
    """QEMU's virt board booting U-Boot (as -bios, in M-mode) with ``disk_image`` as a virtio-blk-device.

    ``snapshot=on``: the guest's writes go to a temporary overlay QEMU discards at exit, so the image file is
    never written, and a later ``virtio read`` in the same session reads what ``virtio write`` wrote.
    ``legacy``: QEMU 7.2's default virtio-mmio is the legacy interface (version 1); else modern (version 2).
    """
    argv = [
        "qemu-system-riscv64", "-M", "virt", "-m", "128M", "-nographic", "-bios", str(UBOOT_ELF),
        "-drive", f"if=none,file={disk_image},format=raw,id=d0,snapshot=on",
        "-device", "virtio-blk-device,drive=d0",
    ]  # fmt: skip
    if not legacy:
        argv += ["-global", "virtio-mmio.force-legacy=false"]
    return argv


# --- the session --------------------------------------------------------------------------------------------


class UbootError(AssertionError):
    """U-Boot did not print what was expected in time, or exited: the message holds the transcript's end."""


class UbootSession:
    """A running U-Boot (any command whose stdin/stdout is its UART), stopped at its prompt.

    ``session_timeout`` bounds the whole session and ``timeout`` each wait; both only turn a hang into a
    failure. Use as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        argv: list[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        session_timeout: float = 300,
        boot_timeout: float = 120,
    ) -> None:
        self.argv = argv
        self._deadline = time.monotonic() + session_timeout
        self._cond = threading.Condition()
        self._out = bytearray()
        self._err = bytearray()
        self._eof = False
        self._pos = 0  # where the next expect() starts looking
        self._at_prompt = False
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
            env=dict(env) if env is not None else None,
        )  # fmt: skip
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self._out, True), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self._err, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        try:
            self.expect(AUTOBOOT, boot_timeout)
            self.send(b" ")  # any key: U-Boot stops the countdown and gives its prompt
            countdown = self.expect(PROMPT, boot_timeout)
            # Only the countdown's own line before the prompt: else the key came after bootdelay (2 s of the
            # guest's time) and U-Boot ran its boot command first, leaving the key typed at the prompt.
            if countdown.count("\n") != 1:
                raise self._fail("the key did not stop autoboot in time: U-Boot ran its boot command")
        except BaseException:
            self.close()
            raise
        self._at_prompt = True

    def __enter__(self) -> UbootSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, stream: object, buf: bytearray, is_stdout: bool) -> None:
        fd = stream.fileno()  # type: ignore[attr-defined]
        while chunk := os.read(fd, 65536):
            with self._cond:
                buf += chunk
                self._cond.notify_all()
        with self._cond:
            if is_stdout:
                self._eof = True
            self._cond.notify_all()

    @property
    def transcript(self) -> str:
        """Everything U-Boot printed so far (its UART output, byte for byte; U-Boot prints CR LF)."""
        with self._cond:
            return self._out.decode("utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        with self._cond:
            return self._err.decode("utf-8", errors="replace")

    def _fail(self, message: str) -> UbootError:
        tail = self.transcript[-4000:]
        err = self.stderr[-2000:]
        return UbootError(f"{message}\n--- argv: {self.argv}\n--- transcript (end):\n{tail}\n--- stderr:\n{err}")

    def expect(self, text: str | bytes, timeout: float = 120) -> str:
        """Wait until ``text`` appears after the read position; return the output up to and including it.

        The read position moves past ``text``. Raises UbootError (with the transcript) when U-Boot exits or
        ``timeout`` (or the session's own bound) passes first.
        """
        needle = text.encode() if isinstance(text, str) else text
        start = time.monotonic()
        deadline = min(start + timeout, self._deadline)
        found = -1

        def arrived() -> bool:
            nonlocal found
            found = self._out.find(needle, self._pos)
            return found >= 0 or self._eof

        with self._cond:
            while not arrived():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if found < 0:
                waited = time.monotonic() - start
                why = "exited" if self._eof else f"did not print it within {waited:.0f} s (timeout {timeout} s)"
                raise self._fail(f"waiting for {text!r}: U-Boot {why}")
            end = found + len(needle)
            got = bytes(self._out[self._pos : end])
            self._pos = end
        return got.decode("utf-8", errors="replace")

    def send(self, data: bytes) -> None:
        """Type ``data`` on U-Boot's console."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError as exc:
            raise self._fail(f"sending {data!r}: U-Boot's input is closed") from exc

    def command(self, line: str, timeout: float = 120) -> str:
        """Run ``line`` at the prompt; return what it printed up to the next prompt (which is not included).

        U-Boot echoes what is typed, so the text starts with ``line`` and U-Boot's CR LF after it.
        """
        assert "\n" not in line and "\r" not in line, line
        if not self._at_prompt:
            raise self._fail(f"{line!r}: U-Boot is not at its prompt")
        self._at_prompt = False
        self.send(line.encode() + b"\n")
        # The prompt comes at the start of a line, so "=> " inside a line of output (md.b's ASCII column) does
        # not end the command; a line of output starting with "=> " would (none of UBOOT_VIRTIO_COMMANDS'
        # does: "echo => x" would).
        out = self.expect("\n" + PROMPT, timeout)
        self._at_prompt = True
        return out[: -len(PROMPT)]

    def unread(self) -> str:
        """What U-Boot printed after the read position (after close(): all the rest of its output)."""
        with self._cond:
            return self._out[self._pos :].decode("utf-8", errors="replace")

    def run(self, lines: Iterable[str], timeout: float = 120) -> list[str]:
        """``command`` for each line, in order."""
        return [self.command(line, timeout) for line in lines]

    def close(self, timeout: float = 60) -> int:
        """Power off from the prompt (else terminate), wait for the exit; kill on timeout. The exit code."""
        if self.proc.poll() is None:
            try:
                if self._at_prompt:
                    self._at_prompt = False
                    self.send(b"poweroff\n")
                else:
                    self.proc.terminate()
            except UbootError:
                self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for reader in self._readers:
            reader.join(timeout)
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        return self.proc.returncode


@dataclass
class UbootRun:
    """One session: the commands, what each printed (from its echo to the next prompt), everything printed."""

    commands: list[str]
    outputs: list[str]
    poweroff: str  # what U-Boot printed after the last prompt: the echoed "poweroff" and its message
    transcript: str
    returncode: int
    stderr: str

    def masked(self) -> list[str]:
        """The outputs then the poweroff text, timing masked: what two emulators must print alike."""
        return [mask_timing(text) for text in [*self.outputs, self.poweroff]]


def run_uboot_session(
    argv: list[str], commands: Iterable[str] = UBOOT_VIRTIO_COMMANDS, command_timeout: float = 120, **kw: Any
) -> UbootRun:
    """Boot to the prompt, run ``commands``, power off. ``kw``: UbootSession's options."""
    commands = list(commands)
    with UbootSession(argv, **kw) as session:
        outputs = session.run(commands, command_timeout)
        code = session.close()
        return UbootRun(commands, outputs, session.unread(), session.transcript, code, session.stderr)


@dataclass(frozen=True)
class ScriptedRun:
    """A whole scripted serial session: everything printed, the exit status and the process's CPU time."""

    transcript: str
    returncode: int
    cpu_seconds: float  # user + system, all threads (os.wait4)


def run_scripted(argv: list[str], lines: Iterable[str], prompts: Iterable[str], timeout: float = 600,
                 cwd: Path | None = None, env: Mapping[str, str] | None = None) -> ScriptedRun:  # fmt: skip
    """Run ``argv`` (its stdin and stdout are a UART) feeding ``lines`` as ``chronicorn record --uart-input FILE
    --expect PROMPT...`` does: each line once the output since the previous line holds one of ``prompts``.

    Waits on output actually arriving; ``timeout`` only turns a session that stops making progress into a failure.
    """
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=cwd,
                            env=dict(env) if env is not None else None)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    out, cond, eof = bytearray(), threading.Condition(), [False]

    def read() -> None:
        assert proc.stdout is not None
        while chunk := os.read(proc.stdout.fileno(), 65536):
            with cond:
                out.extend(chunk)
                cond.notify_all()
        with cond:
            eof[0] = True
            cond.notify_all()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    wanted = [prompt.encode() for prompt in prompts]
    seen = 0
    try:
        for line in lines:
            with cond:
                while not any(prompt in out[seen:] for prompt in wanted):
                    if eof[0] or time.monotonic() > deadline:
                        raise UbootError(f"no prompt for {line!r} in {argv}; output ends {bytes(out[-500:])!r}")
                    cond.wait(deadline - time.monotonic())
                seen = len(out)
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
    reader.join()
    return ScriptedRun(out.decode("utf-8", errors="replace"), proc.returncode, usage.ru_utime + usage.ru_stime)


def history_end(info: str) -> int:
    """The last icount of a recording, from ``chronicorn info``'s output (its "history  icount 0 .. N" line)."""
    line = next(line for line in info.splitlines() if line.startswith("history"))
    return int(line.split("..")[1])
