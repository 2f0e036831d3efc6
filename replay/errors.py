"""The error a replay raises when the guest does not do what the recording says."""

from __future__ import annotations


class ReplayDivergence(Exception):
    """The guest asked for something the recording does not have at this icount."""

    def __init__(self, icount: int, message: str) -> None:
        super().__init__(f"replay diverged at icount {icount}: {message}")
        self.icount = icount
