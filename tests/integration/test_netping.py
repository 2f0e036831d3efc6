"""The netping guest on chronicorn's user network (``--net user``): what QEMU 7.2 prints, recorded and replayed.

QEMU's transcript is expected/netping.out (tests/integration/test_netping_qemu.py checks it on QEMU): DHCP,
ARP, three pings, a TFTP read request and a DNS query, every answer from the user network. Here chronicorn
prints the same, byte for byte, on both interfaces and both XLENs; the recording holds every frame the network
gave the guest (one NetFrame event each) and replays it with no network at all; a recording whose frames were
changed is a divergence.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from replay.events import NetFrame
from replay.log import ChunkKind, LogReader, LogWriter, decode_events
from replay.recording import load_recording
from tests.conftest import EXPECTED, INTERFACES_MODERN_SLOW, ROOT, XLENS_RV64_SLOW, guest
from tests.integration.test_netping_qemu import INTERFACES, SLOT


def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "gdbstub.cli", *args], cwd=ROOT, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=120)  # fmt: skip


def without_version_line(out: bytes, interface: str) -> bytes:
    lines = out.splitlines(keepends=True)
    assert lines[1] == f"virtio-mmio slot {SLOT} {INTERFACES[interface][0]}\n".encode()
    return b"".join(lines[:1] + lines[2:])


@pytest.mark.parametrize("interface", INTERFACES_MODERN_SLOW)
@pytest.mark.parametrize("xlen", XLENS_RV64_SLOW)
def test_netping_prints_what_qemu_prints_recorded_and_replayed(xlen: str, interface: str, tmp_path: Path) -> None:
    recording = tmp_path / "netping.chrec"
    recorded = cli("record", str(guest(xlen, "netping")), "--net", "user", "--virtio", interface, "-o", str(recording))
    assert recorded.returncode == 0, recorded.stderr
    assert without_version_line(recorded.stdout, interface) == (EXPECTED / "netping.out").read_bytes()
    with recording.open("rb") as stream:
        loaded = load_recording(stream)
    frames = [e for e in loaded.inputs if isinstance(e, NetFrame)]
    # DHCP offer and ack, two ARP replies, three echo replies, the TFTP error, the DNS answer (NXDOMAIN: no host
    # table given; the guest does not print it, as QEMU's comes from the host's resolver).
    assert len(frames) == 9 and all(f.slot == SLOT for f in frames) and loaded.header.network
    replayed = cli("replay", str(recording))  # no --net: a replay needs no network
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout


def test_a_changed_frame_in_a_recording_is_a_divergence(tmp_path: Path) -> None:
    """An echo reply's payload edited in the file: the guest sees the other frame (its checksum and payload check
    fail, it stops with an error) and the replay reports the divergence (exit 5)."""
    recording = tmp_path / "netping.chrec"
    assert cli("record", str(guest("rv32", "netping")), "--net", "user", "-o", str(recording)).returncode == 0
    with recording.open("rb") as stream:
        loaded = load_recording(stream)
    ping = next(e for e in loaded.inputs if isinstance(e, NetFrame) and len(e.data) == 298)
    edited = tmp_path / "edited.chrec"
    with recording.open("rb") as stream:  # rewrite the file with the frame's last byte changed
        reader = LogReader(stream)
        header = reader.header
        chunks = list(reader.chunks())
    with edited.open("wb") as out:
        writer = LogWriter(out, header, reader.version)
        for chunk in chunks:
            if chunk.kind == ChunkKind.SNAPSHOT:
                writer.write_snapshot(chunk.first_icount, chunk.prefix, bytes(chunk.data))
            else:
                events = decode_events(chunk.data, chunk.prefix, chunk.last_icount)
                events = [NetFrame(e.icount, e.slot, e.data[:-1] + bytes([e.data[-1] ^ 0xFF])) if e == ping else e
                          for e in events]  # fmt: skip
                writer.write_events(events)
    replayed = cli("replay", str(edited))
    assert replayed.returncode == 5, replayed.stderr
    assert b"ping 2: id 0x4e50 seq 2 payload 256 differs" in replayed.stdout
    assert b"replay ended with guest exited with code 22" in replayed.stderr


@pytest.mark.slow
def test_pcap_of_a_run_record_and_replay_and_the_inbound_frames_of_a_recording(tmp_path: Path) -> None:
    """``--pcap`` writes both directions stamped with virtual time: the same file from ``record`` and from
    ``replay`` (no network there); ``chronicorn pcap`` gives the recording's inbound frames; tcpdump reads them."""
    import dpkt

    from tests.conftest import require_tool

    recording = tmp_path / "netping.chrec"
    recorded_pcap, replayed_pcap, inbound_pcap = (tmp_path / f"{n}.pcap" for n in ("rec", "rep", "in"))
    elf = str(guest("rv64", "netping"))
    assert cli("record", elf, "--net", "user", "-o", str(recording), "--pcap", str(recorded_pcap)).returncode == 0
    assert cli("replay", str(recording), "--pcap", str(replayed_pcap)).returncode == 0
    assert recorded_pcap.read_bytes() == replayed_pcap.read_bytes()
    made = cli("pcap", str(recording), "-o", str(inbound_pcap))
    assert made.returncode == 0 and b"9 frames from the network" in made.stderr
    with recording.open("rb") as stream:
        frames = [e.data for e in load_recording(stream).inputs if isinstance(e, NetFrame)]
    with recorded_pcap.open("rb") as stream:
        both = [(ts, bytes(frame)) for ts, frame in dpkt.pcap.Reader(stream)]
    with inbound_pcap.open("rb") as stream:
        inbound = [(ts, bytes(frame)) for ts, frame in dpkt.pcap.Reader(stream)]
    assert [f for _, f in inbound] == frames and len(both) == 2 * len(frames)  # each request got one answer
    assert set(inbound) <= set(both) and [ts for ts, _ in both] == sorted(ts for ts, _ in both)
    assert both[0][1][6:12] == bytes.fromhex("525400123456")  # the guest's DHCP DISCOVER comes first
    tcpdump = shutil.which("tcpdump")
    require_tool(tcpdump, "tcpdump not installed")
    shown = subprocess.run([str(tcpdump), "-nn", "-r", str(recorded_pcap)], capture_output=True, text=True,
                           timeout=60)  # fmt: skip
    assert shown.returncode == 0 and shown.stdout.count("BOOTP/DHCP") == 4 and "ICMP echo reply" in shown.stdout


@pytest.mark.slow
def test_a_replay_whose_guest_sends_another_frame_diverges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sent frames are not logged, but their running digest is part of every verification point: a replay in
    which the guest sends a different TFTP request (the file name edited in RAM, nothing else: the network's
    answer, "Access violation", is the same) diverges by the first point after that send: the registers differ as
    soon as the guest checksums the other name, and the digest of what was sent differs from then on (the unit
    tests show the second alone diverges). (Points every 4096 instructions here: netping's run is short.)"""
    import io

    from machine.dma import DriveConfig  # noqa: F401  (the machine module graph, as the CLI has it)
    from machine.inputs import ScriptedInputs
    from machine.loader import load_image
    from machine.machine import Machine, MachineConfig
    from machine.net.user import UserNetwork
    from replay.errors import ReplayDivergence
    from replay.history import HistoryInputs
    from replay.recording import make_header
    from replay.saver import RecordingWriter, history_inputs, open_recording
    from replay.timeline import Timeline

    monkeypatch.setattr("replay.verify.VERIFY_INTERVAL", 4096)
    monkeypatch.setattr("replay.recording.VERIFY_INTERVAL", 4096)
    image = load_image(guest("rv64", "netping"))
    config = MachineConfig(network=True)
    inputs = HistoryInputs([], 0, ScriptedInputs(networks={SLOT: UserNetwork()}))
    machine = Machine(image, inputs, bytearray().append, config)
    live = Timeline(machine, inputs, periodic_snapshots=False)
    stream = io.BytesIO()
    writer = RecordingWriter(stream, make_header(image, "riscv64", config.ram_size, 3, "off", {}, machine), live)
    live.run_forward()
    writer.finish()
    tftp_error = next(e.icount for e in inputs.events if isinstance(e, NetFrame) and b"Access violation" in e.data)

    def replay(edit: bool) -> None:
        loaded = load_recording(io.BytesIO(stream.getvalue()))
        replay_inputs = history_inputs(loaded)
        target = Machine(image, replay_inputs, bytearray().append, config)
        timeline = open_recording(loaded, target, replay_inputs, periodic_snapshots=False)
        if edit:
            at = bytes(target.ram).index(b"netping.txt")
            target.ram[at : at + 11] = b"netpinh.txt"
        timeline.replay_to_end()

    replay(edit=False)  # the recording replays as it is
    with pytest.raises(ReplayDivergence) as diverged:
        replay(edit=True)
    assert "digest" in str(diverged.value) and diverged.value.icount <= tftp_error + 4096
