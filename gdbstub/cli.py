"""The ``chronicorn`` command: the composition root.

Exit codes: the guest's finisher code when it exits; 2 for bad input (image,
options); 3 for a guest fault the guest does not handle; 4 when the guest
waits forever for input that cannot come; 130 when interrupted; 1 for an
internal error.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from typing import BinaryIO

from machine.arch.riscv import ARCHES
from machine.engine import EngineError
from machine.loader import ImageError, load_image
from machine.machine import Machine, MachineConfig, RunKind
from replay.log import RecordingError
from replay.store import DEFAULT_BUDGET

log = logging.getLogger("chronicorn")

EXIT_BAD_INPUT = 2
EXIT_FAULT = 3
EXIT_IDLE_FOREVER = 4
EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 1


def _int(text: str) -> int:
    """Integers in any base (0x..), with optional K/M/G suffix for sizes."""
    text = text.strip().lower()
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(text[-1:], 1)
    if scale != 1:
        text = text[:-1]
    try:
        return int(text, 0) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _server_options(parser: argparse.ArgumentParser, with_port: bool = True) -> None:
    if with_port:
        parser.add_argument("--port", type=int, default=1234, help="TCP port (0: pick a free one); default 1234")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--log-packets", metavar="FILE", help="write every packet exchanged with gdb to FILE")
    parser.add_argument("--snapshot-budget", type=_int, default=DEFAULT_BUDGET, metavar="BYTES",
                        help=f"memory for snapshots, e.g. 512M (default {DEFAULT_BUDGET >> 20}M)")  # fmt: skip


def _machine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("guest", help="guest image: an ELF file, or a raw binary with --load-addr")
    parser.add_argument("--arch", choices=sorted(ARCHES), help="core (default: from the ELF header)")
    parser.add_argument("--machine", choices=["virt"], default="virt", help="board (default: virt)")
    parser.add_argument("--ram", type=_int, default=128 << 20, help="RAM size, e.g. 128M (default)")
    parser.add_argument(
        "--icount-shift", type=int, default=3, metavar="N", help="virtual time = icount << N ns (default 3)"
    )
    parser.add_argument("--load-addr", type=_int, help="load address of a raw binary")
    parser.add_argument("--no-native", action="store_true", help="use the pure-Python icount fallback")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chronicorn", description="Reverse-debugging GDB stub server on Unicorn.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a guest; UART to stdout, stdin to UART RX")
    _machine_options(run)
    run.add_argument("--max-insns", type=_int, metavar="N", help="stop after N instructions")
    run.add_argument("--trace", action="store_true", help="print icount, pc and disassembly per instruction")
    serve = sub.add_parser("serve", help="serve the guest to gdb (target remote :PORT), recording as it runs")
    _machine_options(serve)
    _server_options(serve)
    serve.add_argument("--uart-input", default="-", metavar="FILE|-", help="UART input (default: stdin)")
    record = sub.add_parser("record", help="run the guest and record its inputs to a file")
    _machine_options(record)
    record.add_argument("-o", "--output", required=True, metavar="FILE.chrec", help="the recording to write")
    record.add_argument("--uart-input", default="-", metavar="FILE|-", help="UART input (default: stdin)")
    record.add_argument("--sleep", choices=["on", "off"], default="off",
                        help="off: idle wfi jumps to the next timer deadline; on: virtual time follows real time "
                             "while idle (the warps are logged)")  # fmt: skip
    record.add_argument("--max-insns", type=_int, metavar="N", help="stop recording after N instructions")
    replay_cmd = sub.add_parser("replay", help="replay a recording: same output, same exit code")
    replay_cmd.add_argument("recording", metavar="FILE.chrec")
    replay_cmd.add_argument("--guest", help="the guest image (default: the path stored in the recording)")
    replay_cmd.add_argument("--ram", type=_int, help="must match the recording's RAM size if given")
    replay_cmd.add_argument("--icount-shift", type=int, metavar="N", help="must match the recording's shift if given")
    replay_cmd.add_argument(
        "--port",
        type=int,
        metavar="N",
        help="serve the recording to gdb on port N (0: pick a free one) instead of replaying it",
    )
    _server_options(replay_cmd, with_port=False)
    locate = sub.add_parser("locate", help="find the last write to an expression (in a recording, or a guest "
                                           "recorded first)")  # fmt: skip
    locate.add_argument("target", metavar="RECORDING.chrec|GUEST")
    locate.add_argument("--watch", required=True, metavar="EXPR", help="a variable, array element, *(T*)ADDR, ...")
    moment = locate.add_mutually_exclusive_group()
    moment.add_argument("--at", type=_int, metavar="ICOUNT", help="search backward from this icount")
    moment.add_argument("--at-end", action="store_true", help="search backward from the end of history (default)")
    locate.add_argument("--depth", type=int, default=1, metavar="N", help="follow N writes back (default 1)")
    locate.add_argument("--json", action="store_true", help="a machine-readable report on stdout")
    locate.add_argument("--uart-input", metavar="FILE", help="for a GUEST: UART input while recording it")
    locate.add_argument("--guest", metavar="ELF", help="for a recording: its guest image, if it has moved")
    demo = sub.add_parser("demo", help="the bug hunt: record the example firmware, find the culprit with gdb")
    demo.add_argument("--arch", choices=["rv32", "rv64"], default="rv32", help="which build of the example")
    info = sub.add_parser("info", help="describe a recording")
    info.add_argument("recording", metavar="FILE.chrec")
    events = sub.add_parser("events", help="list a recording's events")
    events.add_argument("recording", metavar="FILE.chrec")
    events.add_argument("--from", dest="from_icount", type=_int, metavar="N")
    events.add_argument("--to", dest="to_icount", type=_int, metavar="N")
    return parser


def _config(args: argparse.Namespace) -> MachineConfig:
    return MachineConfig(
        arch=ARCHES[args.arch] if args.arch else None,
        ram_size=args.ram,
        icount_shift=args.icount_shift,
        prefer_native=not getattr(args, "no_native", False),
    )


class _Tracer:
    """Formats ``--trace`` lines with capstone."""

    def __init__(self, xlen: int, out: BinaryIO) -> None:
        import capstone

        mode = capstone.CS_MODE_RISCV32 if xlen == 32 else capstone.CS_MODE_RISCV64
        self._cs = capstone.Cs(capstone.CS_ARCH_RISCV, mode | capstone.CS_MODE_RISCVC)
        self._out = out

    def __call__(self, icount: int, pc: int, code: bytes) -> None:
        text = "(unknown)"
        for insn in self._cs.disasm(code, pc, 1):
            text = f"{insn.mnemonic} {insn.op_str}".strip()
        self._out.write(f"[{icount:>12}] {pc:#010x}: {code[::-1].hex():>8}  {text}\n".encode())
        self._out.flush()


def _live_machine(args: argparse.Namespace) -> Machine:
    """The machine for ``run`` and ``serve``: UART to stdout as it comes, stdin to UART RX."""
    from machine.inputs import HostInputs

    out = sys.stdout.buffer

    def tx(byte: int) -> None:
        out.write(bytes((byte,)))
        out.flush()

    image = load_image(args.guest, args.load_addr)
    stdin = None if sys.stdin is None or sys.stdin.closed else sys.stdin.fileno()
    return Machine(image, HostInputs(stdin), tx, _config(args))


def cmd_run(args: argparse.Namespace) -> int:
    """``chronicorn run``: the guest's UART on stdout, its exit code as ours."""
    machine = _live_machine(args)
    if args.trace:
        machine.enable_trace(_Tracer(machine.arch.xlen, sys.stderr.buffer))
    stop_flag = {"stop": False}

    def on_sigint(signum: int, frame: object) -> None:
        stop_flag["stop"] = True

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        result = machine.run(args.max_insns, lambda: stop_flag["stop"])
    finally:
        signal.signal(signal.SIGINT, previous)
    sys.stdout.flush()
    log.info("%s", result.describe())
    if result.kind == RunKind.EXITED:
        return int(result.exit_code or 0)
    if result.kind == RunKind.FAULT:
        print(f"chronicorn: {result.describe()}", file=sys.stderr)
        return EXIT_FAULT
    if result.kind == RunKind.IDLE_FOREVER:
        print(
            f"chronicorn: guest waits for input forever (input closed, no timer) at icount {result.icount}",
            file=sys.stderr,
        )
        return EXIT_IDLE_FOREVER
    if result.kind == RunKind.RESET:
        print(f"chronicorn: guest requested a reset at icount {result.icount}", file=sys.stderr)
        return 0
    if result.kind == RunKind.INTERRUPTED:
        print(f"chronicorn: interrupted at icount {result.icount}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(
        f"chronicorn: stopped after {result.icount} instructions (--max-insns), pc {result.pc:#x}",
        file=sys.stderr,
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """``chronicorn serve``: the guest halted at reset, recorded as it runs, served to gdb until Ctrl-C."""
    from . import cli_serve

    return cli_serve.cmd_serve(args, _config(args))


def _recording_command(name: str):  # noqa: ANN202 - the cli_recording entry points
    def run(args: argparse.Namespace) -> int:
        from . import cli_recording

        if name == "record":
            return cli_recording.cmd_record(args, _config(args))
        return getattr(cli_recording, f"cmd_{name}")(args)

    return run


def cmd_locate(args: argparse.Namespace) -> int:
    from .locate import cmd_locate as locate

    return locate(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args.arch)


COMMANDS = {
    "run": cmd_run,
    "serve": cmd_serve,
    "locate": cmd_locate,
    "demo": cmd_demo,
    **{name: _recording_command(name) for name in ("record", "replay", "info", "events")},
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chronicorn`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="chronicorn: %(message)s", stream=sys.stderr)
    try:
        return COMMANDS[args.command](args)
    except (ImageError, RecordingError) as exc:
        print(f"chronicorn: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except EngineError as exc:  # a chronicorn or Unicorn limitation, not the user's fault
        log.debug("engine failure", exc_info=True)
        print(f"chronicorn: internal error: {exc} (run with -vv for details)", file=sys.stderr)
        return EXIT_INTERNAL
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
