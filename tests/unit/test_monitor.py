"""Monitor commands on a real timeline (timer guest): parsing, errors as text, each command's effect."""

from __future__ import annotations

import pytest

from gdbstub.monitor import Monitor
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import Machine, MachineConfig
from replay.history import HistoryInputs
from replay.timeline import Timeline
from tests.conftest import guest


@pytest.fixture
def monitor() -> Monitor:
    inputs = HistoryInputs([], 0, ScriptedInputs())
    machine = Machine(load_image(guest("rv32", "timer")), inputs, lambda b: None, MachineConfig())
    timeline = Timeline(machine, inputs)
    timeline.run_forward(interrupted=lambda: False)  # to the guest's exit
    saved: list[str] = []

    def save(path: str, overwrite: bool) -> str:
        saved.append(path)
        return f"saved {path}{' (replaced)' if overwrite else ''}\n"

    return Monitor(timeline, lambda: "described\n", save)


def test_help_and_unknown(monitor: Monitor) -> None:
    assert "seek N" in monitor("help") and monitor("") == monitor("help")
    assert monitor("frobnicate 3").startswith("error: unknown monitor command 'frobnicate 3'")
    assert monitor("snapshot").startswith("error: unknown")


def test_seek_and_icount(monitor: Monitor) -> None:
    end = monitor.timeline.end
    assert monitor("seek 0x100").startswith("icount 256, pc 0x")
    assert monitor("icount") == "256\n"
    assert monitor(f"seek {end + 1}").startswith("error: icount")
    assert monitor("seek twelve") == "error: 'twelve' is not a number\n"
    assert monitor("seek") == "error: expected one icount: seek N\n"


def test_named_snapshots(monitor: Monitor) -> None:
    monitor("seek 5000")
    digest = monitor.timeline.machine.digest()
    assert monitor("snapshot save here") == "snapshot 'here' saved at icount 5000\n"
    monitor("seek 100")
    assert monitor("snapshot load here").startswith("icount 5000")
    assert monitor.timeline.machine.digest() == digest
    assert monitor("snapshot list") == "here  icount 5000\n"
    assert monitor("snapshot load nope").startswith("error: no snapshot named 'nope'")


def test_history_info_and_record_save(monitor: Monitor) -> None:
    text = monitor("history")
    assert f"history: icount 0..{monitor.timeline.end} (live" in text and "MiB of 256 MiB" in text
    assert monitor("info") == "described\n"
    assert monitor("record save x.chrec") == "saved x.chrec\n"
    assert monitor("record save -f x.chrec") == "saved x.chrec (replaced)\n"
    assert monitor("record save").startswith("error: expected a file name")
