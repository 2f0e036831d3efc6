"""Building the one timeline every command runs on: live (``record``, ``serve``) or from a recording."""

from __future__ import annotations

import argparse
import os
import stat
from collections.abc import Callable
from pathlib import Path

from machine.core import MachineCore
from machine.dma import DriveConfig
from machine.factory import make_machine
from machine.inputs import InputSource, PromptGate
from machine.loader import Image
from machine.machine import MachineConfig
from replay.history import HistoryInputs
from replay.log import RecordingError
from replay.output import OutputLog
from replay.recording import Header, LoadedRecording, check_drives, check_replayable, load_recording
from replay.saver import history_inputs, open_recording
from replay.store import SnapshotStore
from replay.timeline import Timeline

from .common import DriveOption, StdoutWriter, load_guest


def uart_output(sink: Callable[[int], None]) -> tuple[Callable[[int], None], Callable[[MachineCore], None]]:
    """A UART callback that shows each byte once along the timeline (:class:`OutputLog`), and its binder.

    The callback needs the machine's icount and the machine needs the callback: bind it once built. A byte is
    stamped with the icount of the store that sent it (two stores in one block share the block's ``icount``).
    """
    output = OutputLog(sink)
    holder: list[MachineCore] = []
    return (lambda byte: output.emit(holder[0].access_icount, byte)), holder.append


def live_timeline(image: Image, live: InputSource, config: MachineConfig, store: SnapshotStore | None = None,
                  periodic_snapshots: bool = True,
                  on_record: Callable[[], None] | None = None) -> Timeline:  # fmt: skip
    """A machine at reset whose history records ``live`` as it runs (a :class:`PromptGate` on it sees the
    guest's output as it is shown: once, in order)."""
    shown = StdoutWriter()
    gate: PromptGate | None = getattr(live, "gate", None)
    if gate is not None:
        shown = _tee(shown, gate.saw_output)
    tx, bind = uart_output(shown)
    inputs = HistoryInputs([], 0, live, on_record)
    machine = make_machine(image, inputs, tx, config)
    bind(machine)
    return Timeline(machine, inputs, store, periodic_snapshots=periodic_snapshots)


def _tee(first: Callable[[int], None], second: Callable[[int], None]) -> Callable[[int], None]:
    def both(byte: int) -> None:
        first(byte)
        second(byte)

    return both


def read_recording(path: str | Path) -> LoadedRecording:
    """A recording read and checked (RecordingError, one line, when it cannot be)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or a device could block forever
            raise RecordingError(f"{path} is not a regular file")
        with open(path, "rb") as stream:
            return load_recording(stream)
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except MemoryError:
        raise RecordingError(f"{path} asks for more memory than this machine has") from None


def recording_timeline(args: argparse.Namespace, loaded: LoadedRecording, store: SnapshotStore | None = None,
                       periodic_snapshots: bool = True, show_output: bool = True,
                       output: Callable[[int, int], None] | None = None,
                       inputs: HistoryInputs | None = None) -> Timeline:  # fmt: skip
    """The fixed timeline of a recording, on the image it was made with (``--guest`` if it has moved).

    ``output(icount, byte)``: where the UART's bytes go instead of stdout (each with the icount of the store that
    sent it, every time it is sent); ``inputs``: the history's input source, if not the recording's own events
    as :func:`~replay.saver.history_inputs` gives them (a tap on it: ``chronicorn view``)."""
    from machine.arch.registry import ARCHES

    header = loaded.header
    load_addr = header.options.get("load_addr")  # a raw binary's (recorded with --load-addr)
    if load_addr is not None and not (isinstance(load_addr, int) and 0 <= load_addr < 1 << 64):
        raise RecordingError("recording header option 'load_addr' is not an address")
    image = load_guest(args.guest or header.image_path, load_addr if isinstance(load_addr, int) else None)
    check_replayable(header, image, args.ram, args.icount_shift)
    kernel, initrd = recorded_file(header, "kernel"), recorded_file(header, "initrd")
    append = header.options.get("append")
    if append is not None and not isinstance(append, str):
        raise RecordingError("recording header option 'append' is not a string")
    drives = recorded_drives(header, args.drive)
    config = MachineConfig(ARCHES[header.arch], header.ram_size, header.icount_shift, drives=drives,
                           virtio_legacy=header.virtio == "legacy", network=header.network,
                           audio=header.audio, kernel=kernel, initrd=initrd, append=append)  # fmt: skip
    if output is None:
        tx, bind = uart_output(StdoutWriter() if show_output else lambda byte: None)
    else:
        holder: list[MachineCore] = []
        tx, bind = (lambda byte: output(holder[0].access_icount, byte)), holder.append
    inputs = inputs if inputs is not None else history_inputs(loaded)
    try:
        machine = make_machine(image, inputs, tx, config)
    except MemoryError:
        raise RecordingError(f"the recording's {header.ram_size}-byte RAM does not fit in memory") from None
    check_drives(header, machine)
    bind(machine)
    return open_recording(loaded, machine, inputs, store, periodic_snapshots)


def recorded_file(header: Header, what: str) -> str | None:
    """The ``--kernel`` (``what`` "kernel") or ``--initrd`` file the recording was made with, if any
    (RecordingError if it is not the same file: its SHA-256 is in the header)."""
    import hashlib

    path, sha256 = header.options.get(what), header.options.get(f"{what}_sha256")
    if path is None:
        return None
    if not isinstance(path, str) or not isinstance(sha256, str):
        raise RecordingError(f"recording header options '{what}'/'{what}_sha256' are not strings")
    try:
        with open(path, "rb") as stream:
            found = hashlib.sha256(stream.read(1 << 30)).hexdigest()
    except OSError as exc:
        raise RecordingError(f"cannot read the recording's {what} {path[:200]}: {exc.strerror or exc}") from None
    if found != sha256:
        raise RecordingError(f"the {what} {path[:200]} is not the one the recording was made with")
    return path


def recorded_drives(header: Header, given: list[DriveOption]) -> tuple[DriveConfig, ...]:
    """The recording's drives, at the paths it names or where ``--drive`` says they are now."""
    if given and len(given) != len(header.drives):
        raise RecordingError(f"the recording was made with {len(header.drives)} drive(s), --drive names {len(given)}")
    paths = [d.path for d in given] if given else [d.path for d in header.drives]
    return tuple(DriveConfig(path, d.readonly) for path, d in zip(paths, header.drives, strict=True))
