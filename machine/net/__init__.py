"""Network backends behind the virtual network card: nothing (``--net none``) or QEMU's user-mode network."""

from .backend import NetBackend, NoNetwork
from .frames import SlirpAddresses
from .user import UserNetwork

__all__ = ["NetBackend", "NoNetwork", "SlirpAddresses", "UserNetwork"]
