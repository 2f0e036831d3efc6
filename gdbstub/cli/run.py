"""``chronicorn run``: the guest's UART on stdout, stdin to its receiver, its exit code as ours."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import BinaryIO

from machine.factory import make_machine
from machine.inputs import HostInputs
from machine.results import RunKind

from .common import (
    Interrupt,
    StdoutWriter,
    add_machine_options,
    audio_slot,
    audio_sources,
    check_drives,
    close_audio_sink,
    describe_end,
    exit_code,
    export_overlays,
    guest_image,
    instruction_count,
    machine_config,
    networks,
    open_audio_sink,
    say,
    virtio_layout,
)
from .pcap import add_pcap_option, open_pcap

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_machine_options(parser)
    add_pcap_option(parser)
    parser.add_argument("--max-insns", type=instruction_count, metavar="N",
                        help="stop after N instructions (N at least 1)")  # fmt: skip
    parser.add_argument("--trace", action="store_true", help="print icount, pc and disassembly per instruction")


class Tracer:
    """Formats ``--trace`` lines with capstone."""

    def __init__(self, arch_name: str, out: BinaryIO) -> None:
        import capstone

        if arch_name == "aarch64":
            self._cs = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
        else:
            mode = capstone.CS_MODE_RISCV32 if arch_name == "riscv32" else capstone.CS_MODE_RISCV64
            self._cs = capstone.Cs(capstone.CS_ARCH_RISCV, mode | capstone.CS_MODE_RISCVC)
        self._out = out

    def __call__(self, icount: int, pc: int, code: bytes) -> None:
        text = "(unknown)"
        for insn in self._cs.disasm(code, pc, 1):
            text = f"{insn.mnemonic} {insn.op_str}".strip()
        self._out.write(f"[{icount:>12}] {pc:#010x}: {code[::-1].hex():>8}  {text}\n".encode())
        self._out.flush()


def run(args: argparse.Namespace) -> int:
    image = guest_image(args)
    check_drives(args.drive, [("the guest image", image.path)])
    stdin = None if sys.stdin is None or sys.stdin.closed else sys.stdin.fileno()
    live = HostInputs(stdin, networks=networks(args.net, len(args.drive), virtio_layout(image, args)),
                      audio=audio_sources(args.audio, audio_slot(args, virtio_layout(image, args))))  # fmt: skip
    machine = make_machine(image, live, StdoutWriter(), machine_config(args))
    open_audio_sink(machine, args.audio, [("the guest image", image.path)])
    capture = open_pcap(args, [("the guest image", image.path), *(("a --drive image", d.path) for d in args.drive)])
    if capture is not None:
        machine.frame_tap = capture.tap
    if args.trace:
        machine.enable_trace(Tracer(machine.arch.name, sys.stderr.buffer))
    with Interrupt().installed() as interrupted:
        result = machine.run(args.max_insns, interrupted)
    sys.stdout.flush()
    if capture is not None:
        capture.close()
    close_audio_sink(machine)
    export_overlays(machine, args.drive)
    log.info("%s", result.describe())
    if result.kind != RunKind.EXITED:
        say(describe_end(result))
    return exit_code(result.kind, result.exit_code)
