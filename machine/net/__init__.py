"""Network backends behind the virtual network card: nothing (``--net none``), QEMU's user-mode network with its
host sockets (``--net user``, ``hostfwd=``), or a UDP link (``--net socket,udp=``)."""

from .backend import LiveBackend, NetBackend, NoNetwork
from .frames import SlirpAddresses
from .gateway import HostGateway
from .hostfwd import HostForward, HostForwardError
from .socket_link import SocketAddressError, UdpSocketNetwork, parse_endpoint
from .user import UserNetwork

__all__ = [
    "HostForward",
    "HostForwardError",
    "HostGateway",
    "LiveBackend",
    "NetBackend",
    "NoNetwork",
    "SlirpAddresses",
    "SocketAddressError",
    "UdpSocketNetwork",
    "UserNetwork",
    "parse_endpoint",
]
