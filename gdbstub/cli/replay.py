"""``chronicorn replay``: re-run a recording (same output, same ending, every verification point checked),
or serve it to gdb with ``--port``."""

from __future__ import annotations

import argparse
import sys

from machine.results import RunKind
from replay.errors import ReplayDivergence
from replay.store import DEFAULT_BUDGET

from .common import (
    ExitCode,
    Interrupt,
    UsageError,
    add_drive_options,
    add_server_options,
    audio_option,
    check_drives,
    close_audio_sink,
    describe_end,
    exit_code,
    export_overlays,
    icount_shift,
    open_audio_sink,
    port_number,
    ram_size,
    say,
)
from .pcap import add_pcap_option, open_pcap
from .timelines import read_recording, recording_timeline


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recording", metavar="FILE.chrec")
    parser.add_argument("--guest", help="the guest image (default: the path stored in the recording)")
    parser.add_argument("--ram", type=ram_size, help="must match the recording's RAM size if given")
    parser.add_argument("--icount-shift", type=icount_shift, metavar="N",
                        help="must match the recording's shift if given")  # fmt: skip
    serve_help = "serve the recording to gdb on port N (0..65535; 0: pick a free one) instead of replaying it"
    parser.add_argument("--port", type=port_number, metavar="N", help=serve_help)
    add_server_options(parser, with_port=False)
    add_drive_options(parser, recorded=True)
    add_pcap_option(parser)
    parser.add_argument("--audio", type=audio_option, metavar="out=wav:FILE",
                        help="write what the guest plays to a WAV file (the input is the recording's)")  # fmt: skip
    # Given without --port they would be ignored: None tells "not given" (the server's defaults apply later).
    parser.set_defaults(host=None, snapshot_budget=None)


SERVER_OPTIONS = {"host": "--host", "log_packets": "--log-packets", "snapshot_budget": "--snapshot-budget",
                  "save_dir": "--save-dir"}  # fmt: skip


class ProgressBar:
    """A one-line progress bar on a terminal (stderr), redrawn at each verification point."""

    def __init__(self, end: int) -> None:
        self._end = end

    def __call__(self, icount: int) -> None:
        done = min(1.0, icount / self._end) if self._end else 1.0
        width = 40
        print(f"\rreplaying [{'#' * int(done * width):<{width}}] {done:6.1%} icount {icount}/{self._end}",
              end="", file=sys.stderr, flush=True)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    if args.port is None:
        given = [option for name, option in SERVER_OPTIONS.items() if getattr(args, name) is not None]
        if given:
            raise UsageError(f"{', '.join(given)} only appl{'ies' if len(given) == 1 else 'y'} with --port")
    else:
        args.host = "127.0.0.1" if args.host is None else args.host
        args.snapshot_budget = DEFAULT_BUDGET if args.snapshot_budget is None else args.snapshot_budget
    loaded = read_recording(args.recording)
    if loaded.damage is not None:
        say(f"the recording is damaged at byte {loaded.damage.offset} ({loaded.damage.reason}); "
            f"replaying its intact part, icount 0..{loaded.last_icount}")  # fmt: skip
    if args.port is not None:
        from .serve import serve_recording

        return serve_recording(args, loaded)
    timeline = recording_timeline(args, loaded, periodic_snapshots=False)
    check_drives(args.drive, [("the recording", args.recording), ("the guest image", timeline.machine.image.path)])
    capture = open_pcap(args, [("the recording", args.recording), ("the guest image", timeline.machine.image.path)])
    if capture is not None:
        timeline.machine.frame_tap = capture.tap
    if args.audio is not None and args.audio.source != "none":
        raise UsageError("--audio in=...: a replay's microphone is the recording (only out=wav:FILE applies)")
    open_audio_sink(timeline.machine, args.audio, [("the recording", args.recording)])
    progress = ProgressBar(timeline.end) if sys.stderr.isatty() else None
    try:
        with Interrupt().installed() as interrupted:
            result = timeline.replay_to_end(interrupted, progress)
    except ReplayDivergence as exc:
        say(f"{exc}{'' if '(pc ' in str(exc) else f' (pc {timeline.machine.pc:#x})'}")
        return ExitCode.DIVERGED
    finally:
        if progress is not None:
            print(file=sys.stderr)
        if capture is not None:
            capture.close()
        close_audio_sink(timeline.machine)
    export_overlays(timeline.machine, args.drive)  # the disk as the replay left it
    if result.kind == RunKind.INTERRUPTED:
        say(describe_end(result))
        return ExitCode.INTERRUPTED
    end = loaded.end
    if end is None:
        if result.icount == timeline.end and (result.kind == RunKind.LIMIT or result.kind.ends_by_itself):
            say(f"replayed the intact part to icount {result.icount}; the recording has no end record")
            return ExitCode.OK
        say(f"replay ended ({describe_end(result)}) before the intact part's end at icount {timeline.end}")
        return ExitCode.DIVERGED
    cut = end.kind in (RunKind.INTERRUPTED, RunKind.LIMIT)
    if result.icount != end.icount or result.kind != (RunKind.LIMIT if cut else end.kind):
        say(f"replay ended with {describe_end(result)}; the recording with {end.kind.label} at icount {end.icount}")
        return ExitCode.DIVERGED
    if end.kind == RunKind.EXITED and result.exit_code != end.code:
        say(f"replay diverged at icount {end.icount}: the guest exited with code {result.exit_code}, "
            f"the recording says {end.code}")  # fmt: skip
        return ExitCode.DIVERGED
    # A recording the user cut ends here without a code of its own; otherwise the recorded ending's code.
    return ExitCode.OK if cut else exit_code(end.kind, end.code)
