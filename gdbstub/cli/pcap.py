"""``--pcap FILE`` (network frames as a capture file, both directions, virtual time) and ``chronicorn pcap``
(the frames a recording holds: what the network gave the guest)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import BinaryIO

from .common import ExitCode, Interrupt, UsageError, add_drive_options, check_not_overwriting, say

SNAPLEN = 65535
LINKTYPE_ETHERNET = 1


class PcapFile:
    """A capture being written (``tcpdump -r`` reads it): each frame stamped with the guest's virtual time."""

    def __init__(self, path: str | Path) -> None:
        import dpkt  # (only commands writing a capture need it)

        try:
            self._stream: BinaryIO = open(path, "wb")  # noqa: SIM115 - open for the command's lifetime
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
        self._writer = dpkt.pcap.Writer(self._stream, snaplen=SNAPLEN, linktype=LINKTYPE_ETHERNET, nano=True)
        self.frames = 0

    def tap(self, ns: int, outbound: bool, frame: bytes) -> None:
        """Machine.frame_tap: one frame at ``ns`` of virtual time (``outbound``: the guest sent it)."""
        self._writer.writepkt(frame, ts=ns / 1e9)
        self.frames += 1

    def close(self) -> None:
        self._stream.close()


def add_pcap_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pcap", metavar="FILE",
                        help="write every network frame, both directions, to FILE (pcap, virtual time)")  # fmt: skip


def open_pcap(args: argparse.Namespace, inputs: list[tuple[str, str | Path | None]]) -> PcapFile | None:
    """The ``--pcap`` file, never one of the command's inputs (None without the option)."""
    if getattr(args, "pcap", None) is None:
        return None
    check_not_overwriting("--pcap", args.pcap, inputs)
    return PcapFile(args.pcap)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recording", metavar="FILE.chrec")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.pcap", help="the capture to write")
    parser.add_argument("--guest", help="the guest image (default: the path stored in the recording)")
    add_drive_options(parser, recorded=True)


def run(args: argparse.Namespace) -> int:
    """The frames the network gave the guest (the recording's NetFrame events), stamped with the virtual time
    they entered it at. The virtual time needs the idle periods, which only a replay knows: the recording is
    replayed (its UART output is not shown) and the inbound frames written as they are delivered."""
    from .timelines import read_recording, recording_timeline  # (the recording's side: replay/)

    loaded = read_recording(args.recording)
    check_not_overwriting("-o", args.output, [("the recording", args.recording)])
    args.ram = args.icount_shift = None
    timeline = recording_timeline(args, loaded, periodic_snapshots=False, show_output=False)
    capture = PcapFile(args.output)
    timeline.machine.frame_tap = lambda ns, outbound, frame: None if outbound else capture.tap(ns, outbound, frame)
    try:
        with Interrupt().installed() as interrupted:
            timeline.replay_to_end(interrupted, None)
    finally:
        capture.close()
    say(f"{capture.frames} frames from the network to the guest written to {args.output}")
    return ExitCode.OK
