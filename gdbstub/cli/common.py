"""What every ``chronicorn`` command shares: options, the exit codes, the guest's UART on stdout, Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import enum
import os
import signal
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from machine.arch.registry import ARCHES
from machine.dma import DriveConfig
from machine.inputs import NetBackend, PromptGate

if TYPE_CHECKING:
    from machine.audio import AudioSource
    from machine.virtio_slots import VirtioLayout
from machine.loader import Image, ImageError, load_image
from machine.machine import Machine, MachineConfig
from machine.results import RunKind, RunResult

MAX_IMAGE_BYTES = 1 << 30
MAX_ICOUNT = (1 << 63) - 1  # the largest icount an option may name (the engine counts in 64 bits)
MIN_SNAPSHOT_BUDGET = 1 << 20
PAGE = 4096
MAX_RAM = 2 << 30


class UsageError(Exception):
    """Bad input the user can fix (an option, a path): ``main`` prints it as one line and exits 2."""


class ExitCode(enum.IntEnum):
    """``chronicorn``'s exit codes, the same in every command (a guest's exit passes its own code through)."""

    OK = 0
    INTERNAL = 1  # a chronicorn or Unicorn limitation (run with -vv)
    BAD_INPUT = 2  # bad image, options or recording: one line on stderr
    GUEST_FAULT = 3  # the guest took an exception it has no handler for
    IDLE_FOREVER = 4  # the guest waits for input that can never come
    DIVERGED = 5  # a replay did not do what the recording says
    NOT_FOUND = 6  # locate: no write to the expression in the history searched
    INTERRUPTED = 130  # Ctrl-C


ENDINGS = {
    RunKind.FAULT: ExitCode.GUEST_FAULT,
    RunKind.IDLE_FOREVER: ExitCode.IDLE_FOREVER,
    RunKind.INTERRUPTED: ExitCode.INTERRUPTED,
    RunKind.RESET: ExitCode.OK,
    RunKind.LIMIT: ExitCode.OK,
}


def exit_code(kind: RunKind, guest_code: int | None = None) -> int:
    """The exit code for a run that ended this way (``run``, ``record`` and ``replay`` alike)."""
    if kind == RunKind.EXITED:
        return int(guest_code or 0) & 0xFF
    return int(ENDINGS.get(kind, ExitCode.OK))


def describe_end(result: RunResult) -> str:
    """One line for stderr about how a run ended."""
    if result.kind == RunKind.IDLE_FOREVER:
        return f"guest waits for input forever (input closed, no timer) at icount {result.icount}"
    if result.kind == RunKind.RESET:
        return f"guest requested a reset at icount {result.icount}"
    if result.kind == RunKind.INTERRUPTED:
        return f"interrupted at icount {result.icount}"
    if result.kind == RunKind.LIMIT:
        return f"stopped after {result.icount} instructions (--max-insns), pc {result.pc:#x}"
    return result.describe()


def say(message: str) -> None:
    """One line for the user on stderr, prefixed as every chronicorn message is."""
    print(f"chronicorn: {message}", file=sys.stderr, flush=True)


class StdoutWriter:
    """The guest's UART on our stdout, byte by byte as it comes (the one UART sink of every command)."""

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._out = stream if stream is not None else sys.stdout.buffer

    def __call__(self, byte: int) -> None:
        self._out.write(bytes((byte,)))
        self._out.flush()


class Interrupt:
    """Ctrl-C as a flag that long runs poll (``interrupted()``) instead of an exception."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    @contextlib.contextmanager
    def installed(self) -> Iterator[Interrupt]:
        """SIGINT sets the flag while inside the block."""
        previous = signal.signal(signal.SIGINT, lambda signum, frame: setattr(self, "requested", True))
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


def parse_int(text: str) -> int:
    """Integers in any base (0x..), with optional K/M/G suffix for sizes."""
    text = text.strip().lower()
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(text[-1:], 1)
    if scale != 1:
        text = text[:-1]
    try:
        return int(text, 0) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def ranged(low: int, high: int | None, expected: str, multiple: int = 1) -> Callable[[str], int]:
    """An argparse type: an integer (as :func:`parse_int` reads it) in ``low..high``, a multiple of ``multiple``.

    Anything else is refused when the command line is parsed, with argparse's usage line and
    ``chronicorn CMD: error: argument --OPT: 70000 is out of range (EXPECTED)``, exit 2.
    """

    def parse(text: str) -> int:
        value = parse_int(text)
        if value < low or (high is not None and value > high) or value % multiple:
            raise argparse.ArgumentTypeError(f"{text.strip()} is out of range ({expected})")
        return value

    parse.__name__ = "integer"
    return parse


port_number = ranged(0, 65535, "a TCP port 0..65535; 0 picks a free one")
instruction_count = ranged(1, MAX_ICOUNT, "at least 1 instruction")
icount_value = ranged(0, MAX_ICOUNT, "an icount, 0 or more")
ram_size = ranged(PAGE, MAX_RAM, "a multiple of 4K from 4K to 2G", multiple=PAGE)
icount_shift = ranged(0, 10, "0..10")
address = ranged(0, (1 << 64) - 1, "an address, 0..2**64-1")
snapshot_budget = ranged(MIN_SNAPSHOT_BUDGET, None, f"at least {MIN_SNAPSHOT_BUDGET >> 20}M")


def directory(text: str) -> Path:
    """An argparse type: an existing directory we may write in (``--save-dir``)."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text} is not writable")
    return path


def same_file(a: str | Path | int, b: str | Path | int) -> bool:
    """Whether two paths (or open file descriptors) name the same regular file, through symlinks and hard links.

    Only regular files count: ``/dev/null`` as both input and output loses nothing.
    """
    try:
        sa = os.stat(a) if not isinstance(a, int) else os.fstat(a)
        sb = os.stat(b) if not isinstance(b, int) else os.fstat(b)
    except (OSError, ValueError):
        return False  # one of them does not exist (yet): it cannot be the other
    return stat.S_ISREG(sa.st_mode) and (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def check_not_overwriting(option: str, output: str | Path, inputs: Iterable[tuple[str, str | Path | None]]) -> None:
    """Refuse to write ``output`` (named on the command line by ``option``) when it is one of the ``inputs``.

    ``inputs``: (what it is, its path) pairs; the path ``-`` is stdin. Compared by inode, so a symlink or a
    hard link to an input is refused too (opening the output would truncate the input before it is read).
    """
    for what, path in inputs:
        if path is None:
            continue
        if path == "-":
            stdin = sys.stdin.fileno() if sys.stdin is not None and not sys.stdin.closed else None
            if stdin is not None and same_file(output, stdin):
                raise UsageError(f"{option} {output} is {what} (stdin): it would be overwritten while read")
        elif same_file(output, path):
            raise UsageError(f"{option} {output} is {what} {path}: it would be overwritten")


@dataclass(frozen=True, slots=True)
class DriveOption:
    """``--drive FILE[,format=raw][,readonly=on|off][,overlay=OUT]``."""

    path: str
    readonly: bool = False
    overlay: str | None = None  # where to write the disk as it ends (image plus what the guest wrote)


def drive_option(text: str) -> DriveOption:
    """An argparse type: a ``--drive`` value (QEMU's ``-drive file=...`` spelling is accepted too)."""
    parts = text.split(",")
    path, settings = parts[0], parts[1:]
    if path.startswith("file="):
        path = path[len("file=") :]
    if not path:
        raise argparse.ArgumentTypeError(f"{text!r}: no image file")
    readonly, overlay = False, None
    for setting in settings:
        key, _, value = setting.partition("=")
        if key == "format" and value == "raw":
            continue
        if key == "readonly" and value in ("on", "off"):
            readonly = value == "on"
        elif key == "overlay" and value:
            overlay = value
        else:
            raise argparse.ArgumentTypeError(
                f"{setting!r} in {text!r}: expected format=raw, readonly=on|off or overlay=FILE"
            )
    return DriveOption(path, readonly, overlay)


def add_drive_options(parser: argparse.ArgumentParser, recorded: bool = False) -> None:
    """``--drive`` (repeatable); ``recorded``: for a recording (only moved images and overlays)."""
    drive_help = ("a raw disk image for a virtio-blk device (repeatable; the first goes to the highest virtio "
                  "slot, as on QEMU); the image is never written: writes go to an overlay in memory, saved to OUT "
                  "at the end with overlay=OUT")  # fmt: skip
    if recorded:
        drive_help = "the recorded disk images, if they moved (each must be the same file), ,overlay=OUT to save"
    parser.add_argument("--drive", type=drive_option, action="append", default=[],
                        metavar="FILE[,readonly=on][,overlay=OUT]", help=drive_help)  # fmt: skip
    if not recorded:
        parser.add_argument("--virtio", choices=["legacy", "modern"], default="legacy",
                            help="virtio-mmio interface: legacy (Version 1, QEMU 7.2's default) or modern "
                                 "(Version 2: QEMU's -global virtio-mmio.force-legacy=false)")  # fmt: skip


def check_drives(drives: Iterable[DriveOption], inputs: list[tuple[str, str | Path | None]]) -> None:
    """Refuse an overlay output that is one of the command's inputs (a drive's image included)."""
    drives = list(drives)
    named = [*inputs, *(("a --drive image", d.path) for d in drives)]
    for drive in drives:
        if drive.overlay is not None:
            check_not_overwriting("overlay=", drive.overlay, named)


def export_overlays(machine: Machine, drives: Iterable[DriveOption]) -> None:
    """Write each ``overlay=OUT``: the disk as the run left it (through a temporary file and a rename)."""
    for number, drive in enumerate(drives):
        if drive.overlay is not None:
            try:
                machine.disks[machine.slots.layout.slot(number)].disk.export(drive.overlay)
            except OSError as exc:
                raise UsageError(f"cannot write {drive.overlay}: {exc.strerror or exc}") from exc
            say(f"drive {number + 1}: the disk as it ends written to {drive.overlay}")


@dataclass(frozen=True, slots=True)
class NetOption:
    """``--net none``, ``--net user[,tftp=DIR][,host=NAME=ADDR...][,hostfwd=RULE...]`` or
    ``--net socket,udp=HOST:PORT,localaddr=HOST:PORT``."""

    kind: str  # "none", "user" or "socket"
    tftp: str | None = None
    hosts: tuple[tuple[str, str], ...] = ()
    forwards: tuple[str, ...] = ()  # user: the hostfwd= rules, checked (machine.net.hostfwd.HostForward)
    udp: str | None = None  # socket: HOST:PORT where frames go, checked (machine.net.socket_link.parse_endpoint)
    localaddr: str | None = None  # socket: HOST:PORT bound (port 0: a free one), checked


def net_option(text: str) -> NetOption:
    """An argparse type: a ``--net`` value."""
    expected = {
        "none": "nothing",
        "user": "tftp=DIR, host=NAME=ADDR or hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT",
        "socket": "udp=HOST:PORT and localaddr=HOST:PORT",
    }
    kind, *settings = text.split(",")
    if kind not in expected:
        raise argparse.ArgumentTypeError(
            f"{kind!r}: the network is 'user' (QEMU's -netdev user), 'socket' (-netdev socket,udp=) or 'none'"
        )
    tftp, hosts, forwards, endpoints = None, [], [], {}
    for setting in settings:
        key, _, value = setting.partition("=")
        if kind == "user" and key == "tftp" and value:
            if not Path(value).is_dir():
                raise argparse.ArgumentTypeError(f"tftp={value}: not a directory")
            tftp = value
        elif kind == "user" and key == "host" and "=" in value:
            name, _, addr = value.partition("=")
            hosts.append((name, addr))
        elif kind == "user" and key == "hostfwd":
            from machine.net.hostfwd import HostForward, HostForwardError

            try:
                HostForward.parse(value)
            except HostForwardError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
            forwards.append(value)
        elif kind == "socket" and key in ("udp", "localaddr") and key not in endpoints:
            from machine.net.socket_link import SocketAddressError, parse_endpoint

            try:
                parse_endpoint(value, allow_port_zero=key == "localaddr")
            except SocketAddressError as exc:
                raise argparse.ArgumentTypeError(f"{key}={exc}") from None
            endpoints[key] = value
        else:
            raise argparse.ArgumentTypeError(f"{setting!r} in {text!r}: expected {expected[kind]} ({kind})")
    if kind == "socket" and len(endpoints) != 2:
        raise argparse.ArgumentTypeError(f"{text!r}: socket needs udp=HOST:PORT and localaddr=HOST:PORT")
    return NetOption(kind, tftp, tuple(hosts), tuple(forwards), endpoints.get("udp"), endpoints.get("localaddr"))


def virtio_layout(image: Image, args: argparse.Namespace) -> VirtioLayout:
    """The virtio slots of the board the image runs on (slot numbers key the live network and audio backends)."""
    from machine.arch.registry import choose_arch
    from machine.factory import virtio_layout_for

    return virtio_layout_for(choose_arch(image, ARCHES[args.arch] if args.arch else None).name)


def networks(option: NetOption | None, drives: int, layout: VirtioLayout | None = None) -> dict[int, NetBackend]:
    """The live backend of ``--net``, by the virtio slot its device takes (after the drives); says on stderr
    where each host forward and the socket link listen (``chronicorn: hostfwd tcp 127.0.0.1:43121 -> ...``)."""
    if option is None:
        return {}
    from machine.boards.virt import VIRTIO_LAYOUT
    from machine.net.backend import NoNetwork
    from machine.net.gateway import HostGateway
    from machine.net.hostfwd import HostForward
    from machine.net.socket_link import UdpSocketNetwork, parse_endpoint
    from machine.net.user import UserNetwork

    try:
        slot = (layout or VIRTIO_LAYOUT).slot(drives)
    except ValueError as exc:
        raise UsageError(f"--net: {exc} on this board") from None
    if option.kind == "none":
        return {slot: NoNetwork()}
    if option.kind == "socket":
        assert option.udp is not None and option.localaddr is not None  # net_option checked
        remote = parse_endpoint(option.udp)
        try:
            link = UdpSocketNetwork(remote, parse_endpoint(option.localaddr, allow_port_zero=True))
        except OSError as exc:
            raise UsageError(f"--net socket: cannot bind localaddr={option.localaddr}: {exc.strerror or exc}") from exc
        say(f"socket udp {link.local[0]}:{link.local[1]} -> {remote[0]}:{remote[1]}")
        return {slot: link}
    try:
        network = UserNetwork(Path(option.tftp) if option.tftp else None, dict(option.hosts))
    except ValueError as exc:
        raise UsageError(f"--net {option.kind}: {exc}") from exc
    try:
        gateway = HostGateway(network, [HostForward.parse(rule) for rule in option.forwards])
    except OSError as exc:
        rules = " ".join(f"hostfwd={rule}" for rule in option.forwards)
        raise UsageError(f"--net user: cannot listen for {rules}: {exc.strerror or exc}") from exc
    for forward, bound in gateway.bound:
        say(f"hostfwd {forward.describe(bound)}")
    return {slot: gateway}


@dataclass(frozen=True, slots=True)
class AudioOption:
    """``--audio [in=none|sine:FREQ|wav:FILE][,out=none|wav:FILE]``."""

    source: str = "none"
    out: str | None = None  # a WAV file for what the guest plays


def audio_option(text: str) -> AudioOption:
    """An argparse type: an ``--audio`` value (the input is checked when the machine is built)."""
    source, out = "none", None
    for setting in text.split(","):
        key, _, value = setting.partition("=")
        if key == "in" and value:
            source = value
        elif key == "out" and value == "none":
            out = None
        elif key == "out" and value.startswith("wav:") and len(value) > 4:
            out = value[4:]
        else:
            raise argparse.ArgumentTypeError(f"{setting!r} in {text!r}: expected in=none|sine:FREQ|wav:FILE or "
                                             "out=none|wav:FILE")  # fmt: skip
    return AudioOption(source, out)


def audio_sources(option: AudioOption | None, slot: int) -> dict[int, AudioSource]:
    """The microphone of ``--audio``, by the virtio slot its device takes."""
    if option is None:
        return {}
    from machine.audio import AudioError, audio_source

    try:
        return {slot: audio_source(option.source)}
    except AudioError as exc:
        raise UsageError(f"--audio in={option.source}: {exc}") from exc


def audio_slot(args: argparse.Namespace, layout: VirtioLayout | None = None) -> int:
    """The virtio slot of the sound device: after the drives' and the network's (-1 without ``--audio``)."""
    from machine.boards.virt import VIRTIO_LAYOUT

    if getattr(args, "audio", None) is None:
        return -1
    try:
        return (layout or VIRTIO_LAYOUT).slot(len(args.drive) + (args.net is not None))
    except ValueError as exc:
        raise UsageError(f"--audio: {exc} on this board") from None


def open_audio_sink(machine: Machine, option: AudioOption | None, inputs: list[tuple[str, str | Path | None]]) -> None:
    """``out=wav:FILE``: what the guest plays goes there (never over one of the command's inputs)."""
    if option is None or option.out is None:
        return
    from machine.audio import AudioError, WavSink

    check_not_overwriting("--audio out=wav:", option.out, inputs)
    try:
        machine.audio_sink = WavSink(option.out)
    except AudioError as exc:
        raise UsageError(str(exc)) from exc


def close_audio_sink(machine: Machine) -> None:
    if machine.audio_sink is not None:
        machine.audio_sink.close()
        machine.audio_sink = None


def add_machine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("guest", nargs="?", help="guest image: an ELF file, or a raw binary with --load-addr")
    parser.add_argument("--bios", metavar="FILE",
                        help="firmware as QEMU's -bios: Arm virt's flash 0 (a raw file, with --arch aarch64), or "
                             "RISC-V virt's M-mode firmware; instead of GUEST")  # fmt: skip
    parser.add_argument(
        "--kernel",
        metavar="FILE",
        help="with --bios: the firmware's next stage, as QEMU's -kernel (Arm virt: loaded through fw_cfg; RISC-V "
        "virt: placed after the firmware, named in fw_dynamic's boot info)",
    )
    parser.add_argument("--initrd", metavar="FILE",
                        help="with --kernel on RISC-V virt: its initial RAM disk, as QEMU's -initrd")  # fmt: skip
    parser.add_argument(
        "--append",
        metavar="CMDLINE",
        help="with --kernel on RISC-V virt: its command line (/chosen/bootargs), as QEMU's -append",
    )
    parser.add_argument("--arch", choices=sorted(ARCHES), help="core (default: from the ELF header)")
    parser.add_argument(
        "--machine",
        choices=["virt", "mps2-an385"],
        help="board (default: from the image: virt for RISC-V and AArch64, mps2-an385 for Cortex-M)",
    )
    parser.add_argument("--ram", type=ram_size, default=128 << 20,
                        help="RAM size, a multiple of 4K up to 2G, e.g. 128M (default)")  # fmt: skip
    parser.add_argument("--icount-shift", type=icount_shift, default=3, metavar="N",
                        help="virtual time = icount << N ns, N 0..10 (default 3)")  # fmt: skip
    parser.add_argument("--load-addr", type=address, help="load address of a raw binary")
    parser.add_argument("--no-native", action="store_true", help="use the pure-Python icount fallback")
    add_drive_options(parser)
    parser.add_argument("--net", type=net_option,
                        metavar="user[,tftp=DIR][,host=NAME=ADDR][,hostfwd=RULE]|socket,udp=H:P,localaddr=H:P|none",
                        help="a virtio-net device (after the drives' slots) on QEMU's user-mode network "
                             "(10.0.2.0/24, DHCP, gateway 10.0.2.2, DNS 10.0.2.3 for the given hosts, TFTP from DIR; "
                             "the guest reaches the host's 127.0.0.1 at 10.0.2.2; "
                             "hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT, repeatable, forwards a host "
                             "port, on 127.0.0.1 unless HOSTADDR is given, HOSTPORT 0 picks a free one), on a UDP link "
                             "(QEMU's -netdev socket,udp=: one frame per datagram to udp=, from the bound localaddr=) "
                             "or on none")  # fmt: skip
    parser.add_argument("--audio", type=audio_option, metavar="[in=none|sine:FREQ|wav:FILE][,out=none|wav:FILE]",
                        help="a virtio-snd device (after the network's slot): the microphone (default none: silence) "
                             "and where what the guest plays goes (a WAV file)")  # fmt: skip


def add_server_options(parser: argparse.ArgumentParser, with_port: bool = True) -> None:
    from replay.store import DEFAULT_BUDGET  # here: only the commands that serve load replay/

    if with_port:
        parser.add_argument("--port", type=port_number, default=1234,
                            help="TCP port 0..65535 (0: pick a free one); default 1234")  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--log-packets", metavar="FILE", help="write every packet exchanged with gdb to FILE")
    budget_help = f"memory for snapshots, 1M or more, e.g. 512M (default {DEFAULT_BUDGET >> 20}M)"
    parser.add_argument("--snapshot-budget", type=snapshot_budget, default=DEFAULT_BUDGET, metavar="BYTES",
                        help=budget_help)  # fmt: skip
    parser.add_argument("--save-dir", type=directory, default=None, metavar="DIR",
                        help="where 'monitor record save' may write (default: the current directory)")  # fmt: skip


def machine_config(args: argparse.Namespace) -> MachineConfig:
    return MachineConfig(
        arch=ARCHES[args.arch] if args.arch else None,
        ram_size=args.ram,
        icount_shift=args.icount_shift,
        prefer_native=not getattr(args, "no_native", False),
        drives=tuple(DriveConfig(d.path, d.readonly) for d in args.drive),
        virtio_legacy=args.virtio == "legacy",
        network=args.net is not None,
        audio=getattr(args, "audio", None) is not None,
        board=getattr(args, "machine", None),
        kernel=getattr(args, "kernel", None),
        initrd=getattr(args, "initrd", None),
        append=getattr(args, "append", None),
    )


FIRMWARE_ADDRESSES = {"aarch64": 0x0, "riscv32": 0x8000_0000, "riscv64": 0x8000_0000}  # where -bios goes


def guest_image(args: argparse.Namespace) -> Image:
    """The image of GUEST, ``--bios FILE`` (a raw firmware then loads where QEMU's -bios puts it) or ``--kernel
    FILE`` alone (QEMU's -kernel: on Arm virt a raw arm64 Image boots as Linux's boot protocol says)."""
    if args.bios is None and args.guest is None and getattr(args, "kernel", None) is not None:
        args.guest, args.kernel = args.kernel, None
        if args.load_addr is None and Path(args.guest).is_file() and Path(args.guest).read_bytes()[:4] != b"\x7fELF":
            if args.arch != "aarch64":
                raise UsageError("--kernel alone with a raw file needs --arch aarch64 (an ELF file is a GUEST)")
            args.load_addr = 0x4000_0000  # RAM's base: an arm64 Image then goes to its text_offset above it
    if args.bios is not None:
        if args.guest is not None:
            raise UsageError("give the image as GUEST or as --bios FILE, not both")
        args.guest = args.bios
        if args.load_addr is None and Path(args.bios).is_file() and Path(args.bios).read_bytes()[:4] != b"\x7fELF":
            if args.arch not in FIRMWARE_ADDRESSES:
                raise UsageError("--bios with a raw firmware needs --arch aarch64|riscv32|riscv64")
            args.load_addr = FIRMWARE_ADDRESSES[args.arch]
    if args.guest is None:
        raise UsageError("no guest image: give GUEST or --bios FILE")
    return load_guest(args.guest, args.load_addr)


def image_options(args: argparse.Namespace, machine: Machine) -> dict[str, str | int | None]:
    """What a recording's header keeps to rebuild the image: a raw binary's load address, the --kernel file (and
    its --initrd file and --append command line)."""
    options: dict[str, str | int | None] = {"load_addr": args.load_addr}
    kernel = getattr(machine, "kernel", None)
    if kernel is not None:
        options["kernel"], options["kernel_sha256"] = kernel
    initrd = getattr(machine, "initrd", None)
    if initrd is not None:
        options["initrd"], options["initrd_sha256"] = initrd
    if getattr(args, "append", None) is not None:
        options["append"] = args.append
    return options


def load_guest(path: str | Path, load_addr: int | None = None) -> Image:
    """The guest image; only a regular file of sane size (a path may come from a recording's header)."""
    p = Path(path)
    try:
        info = p.stat()
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot read guest image {str(p)[:200]}: {getattr(exc, 'strerror', None) or exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise ImageError(f"guest image {str(p)[:200]} is not a regular file")
    if info.st_size > MAX_IMAGE_BYTES:
        raise ImageError(f"guest image {str(p)[:200]} is larger than {MAX_IMAGE_BYTES >> 20} MiB")
    return load_image(p, load_addr)


def add_expect_option(parser: argparse.ArgumentParser) -> None:
    """``--expect PROMPT`` (repeatable): UART input line by line, each line when the guest has printed a prompt."""
    parser.add_argument("--expect", action="append", default=[], metavar="PROMPT",
                        help="send the UART input a line at a time, each line once the guest's output since the "
                             "last one contains PROMPT (repeatable: any of them), e.g. --expect '=> ' for "
                             "U-Boot; without it all input is there at once")  # fmt: skip


def prompt_gate(args: argparse.Namespace) -> PromptGate | None:
    """The gate ``--expect`` asks for (None without it); UsageError for an empty prompt."""
    if not args.expect:
        return None
    prompts = [p.encode("utf-8", "surrogateescape") for p in args.expect]
    if not all(prompts):
        raise UsageError("--expect needs a non-empty prompt")
    return PromptGate(prompts)


def open_uart_input(path: str) -> BinaryIO | None:
    """UART input: stdin for '-', else the file (the caller closes it)."""
    if path == "-":
        return None if sys.stdin is None or sys.stdin.closed else sys.stdin.buffer
    try:
        return open(path, "rb")  # noqa: SIM115 - read by the input thread for the command's lifetime
    except OSError as exc:
        raise ImageError(f"cannot read UART input {path}: {exc.strerror or exc}") from exc
