"""QEMU's ``hostfwd=[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport`` rules (``net/slirp.c``:
``slirp_hostfwd``), as ``--net user,hostfwd=`` spells them. The sockets are ``gateway.py``'s.

Where this differs from QEMU, on purpose: an empty host address is 127.0.0.1, not every interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from .frames import SlirpAddresses

LOOPBACK = "127.0.0.1"


class HostForwardError(ValueError):
    """A ``hostfwd=`` rule that does not parse."""


@dataclass(frozen=True, slots=True)
class HostForward:
    """One ``hostfwd=[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport`` rule (QEMU's ``slirp_hostfwd``)."""

    protocol: str  # "tcp" or "udp"
    host_addr: str
    host_port: int
    guest_addr: str
    guest_port: int

    @classmethod
    def parse(cls, text: str, addresses: SlirpAddresses | None = None) -> HostForward:
        """Read QEMU's spelling; an empty host address is 127.0.0.1 (QEMU: every interface), an empty guest
        address the first DHCP address (10.0.2.15); a host port 0 picks a free one."""
        addresses = addresses or SlirpAddresses()
        protocol, colon, rest = text.partition(":")
        host_part, dash, guest_part = rest.partition("-")
        host_addr, colon2, host_port = host_part.rpartition(":")
        guest_addr, colon3, guest_port = guest_part.rpartition(":")
        if not (colon and dash and colon2 and colon3):
            raise HostForwardError(f"hostfwd={text}: expected [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport")
        protocol = protocol or "tcp"
        if protocol not in ("tcp", "udp"):
            raise HostForwardError(f"hostfwd={text}: the protocol is tcp or udp, not {protocol!r}")
        guest = _ipv4(guest_addr, f"hostfwd={text}: guest address") if guest_addr else addresses.dhcp_start
        network = addresses.network
        if guest not in network or guest in (network.network_address, network.broadcast_address, addresses.host,
                                             addresses.dns):  # fmt: skip
            raise HostForwardError(f"hostfwd={text}: the guest address must be a guest's in {addresses.network}")
        host = _ipv4(host_addr, f"hostfwd={text}: host address") if host_addr else IPv4Address(LOOPBACK)
        return cls(protocol, str(host), _port(host_port, text, 0), str(guest), _port(guest_port, text, 1))

    def describe(self, bound: tuple[str, int]) -> str:
        """``tcp 127.0.0.1:43121 -> 10.0.2.15:7`` for the port actually bound."""
        return f"{self.protocol} {bound[0]}:{bound[1]} -> {self.guest_addr}:{self.guest_port}"


def _ipv4(text: str, what: str) -> IPv4Address:
    try:
        return IPv4Address(text)
    except ValueError:
        raise HostForwardError(f"{what} {text!r} is not an IPv4 address") from None


def _port(text: str, rule: str, low: int) -> int:
    if not text.isdigit() or not low <= int(text) <= 65535:
        raise HostForwardError(f"hostfwd={rule}: {text!r} is not a port {low}..65535")
    return int(text)
