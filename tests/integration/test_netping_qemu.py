"""The netping guest (its own virtio-net driver) on QEMU's user network: legacy and modern virtio-mmio, rv32 and rv64.

Checks the guest against QEMU only (QEMU 7.2, libslirp 4.7). The guest does DHCP, ARP, three pings, a TFTP read
request and a DNS query; everything it prints comes from slirp's own answers (the DNS reply, which comes from the
host's resolver, is not printed), so all four transcripts are expected/netping.out plus the one line naming the
slot, the interface version, the device features and the virtio-net header size.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import EXPECTED, XLENS, guest, require_tool

pytestmark = pytest.mark.qemu

# QEMU puts the first -device in the highest of the eight virtio-mmio slots (0x10008000).
SLOT = 7
INTERFACES = {
    "legacy": (
        "version 1 device features 0x39bf8064 net header 10 bytes",
        [],
    ),
    "modern": (
        "version 2 device features 0x30bf8024 0x00000101 net header 12 bytes",
        ["-global", "virtio-mmio.force-legacy=false"],
    ),
}


def run_qemu(xlen: str, interface: str) -> subprocess.CompletedProcess[bytes]:
    binary = f"qemu-system-riscv{xlen[2:]}"
    require_tool(shutil.which(binary), f"{binary} not installed")
    cmd = [
        binary, "-M", "virt", "-m", "128M", "-bios", "none", "-nographic",
        "-kernel", str(guest(xlen, "netping")),
        "-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0",
        *INTERFACES[interface][1],
    ]  # fmt: skip
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)


@pytest.mark.parametrize("interface", sorted(INTERFACES))
@pytest.mark.parametrize("xlen", XLENS)
def test_netping_guest_on_qemu(xlen: str, interface: str) -> None:
    proc = run_qemu(xlen, interface)
    assert proc.returncode == 0, (proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))

    lines = proc.stdout.splitlines(keepends=True)
    assert lines[1] == f"virtio-mmio slot {SLOT} {INTERFACES[interface][0]}\n".encode()
    # Everything but the version line is the same on both interfaces and both XLENs.
    assert b"".join(lines[:1] + lines[2:]) == (EXPECTED / "netping.out").read_bytes()
