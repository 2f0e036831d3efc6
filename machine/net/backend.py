"""The seam between a network card and the network behind it (QEMU's ``-netdev``).

The card (virtio-net) hands every Ethernet frame the guest transmits to ``send`` and polls ``receive``
for frames to deliver. Backends are sans-IO: no sockets, threads or clocks, so that what the guest
receives depends only on what it sent.
"""

from __future__ import annotations

from typing import Protocol


class NetBackend(Protocol):
    """Where the guest's Ethernet frames go and where frames for the guest come from."""

    def send(self, frame: bytes) -> None:
        """Take a frame the guest transmitted: a whole Ethernet frame, no virtio header. Never raises."""
        ...

    def receive(self) -> bytes | None:
        """The next frame for the guest, or None when none is ready now."""
        ...

    def close(self) -> None:
        """Drop everything queued and forget all state; later frames are dropped."""
        ...


class NoNetwork:
    """``--net none``: a link with nothing on it. Frames sent vanish and none ever arrive."""

    def send(self, frame: bytes) -> None:
        """Drop the frame."""

    def receive(self) -> bytes | None:
        """Nothing ever arrives."""
        return None

    def close(self) -> None:
        """Nothing to release."""


class LiveBackend(NetBackend, Protocol):
    """A backend with host sockets behind it (``hostfwd``, ``--net socket``): frames may arrive while the guest
    sends nothing, so an idle guest waits on it (``machine.inputs.HostInputs.idle``)."""

    @property
    def listening(self) -> bool:
        """Whether a host socket is open, so that frames may still come."""
        ...

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until a host socket is ready; True if one is."""
        ...
