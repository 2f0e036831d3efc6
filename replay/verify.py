"""Verification points: the one policy and the one digest (QEMU's replay checks, made explicit).

A recorded run (``record``, or a live ``serve`` history) logs a digest of the registers at every multiple
of :data:`VERIFY_INTERVAL` it passes, and ``record``'s writer asks for one more at each flush (at least every
second). A point is taken only where the hart is as execution first reached that icount (one instruction
later if a trap was entered right there), because that is where a replay cut at that icount stands. Any
replay that passes one of those icounts checks it, so a recording made by ``record`` and one saved by
``monitor record save`` are checked the same way. The header states the interval, and a reader refuses a
recording whose points are more than twice that apart: the length of a replay is bounded by the file's size.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Container

from machine.machine import Machine

from .errors import ReplayDivergence

VERIFY_INTERVAL = 1 << 20
VERIFY_DIGEST_BYTES = 16


def verify_digest(machine: Machine) -> bytes:
    """16 bytes identifying the hart's registers and CSRs now, and what the network devices sent so far (not RAM:
    see :func:`machine.state.state_digest`)."""
    h = hashlib.sha256()
    for value in machine.cpu_digest_values():
        h.update(value.to_bytes(16, "little", signed=True))
    if machine.tx_digest:  # (nothing sent: the digest recordings without a network have always had)
        h.update(machine.tx_digest.to_bytes(16, "little"))
    return h.digest()[:VERIFY_DIGEST_BYTES]


class Verifier:
    """One timeline's verification points: taken going forward live, checked going forward through a recording.

    ``note(machine, frontier, keyframes)`` is called after every run. A point is taken or checked only where
    the hart is as execution first reached the icount (:attr:`Machine.is_at_first_boundary`): that is where a
    replay cut at that icount stands. Live, a point is due at every multiple of VERIFY_INTERVAL (one
    instruction later when a trap was entered right there) and when a recording's writer asks for one.
    """

    def __init__(self, live: bool, start: int) -> None:
        self.live = live
        self.points: dict[int, bytes] = {}
        self._recorded: list[int] = []  # a recording's points, sorted (for the next one ahead)
        self._due = (start // VERIFY_INTERVAL + 1) * VERIFY_INTERVAL  # live: the next point
        self.requested = False  # a writer asked for a point now (the run stops for it)
        self._then: Callable[[], None] | None = None

    def load(self, points: dict[int, bytes]) -> None:
        """A recording's points: forward runs stop at each and check it."""
        self.points = dict(points)
        self._recorded = sorted(points)

    def request(self, icount: int, then: Callable[[], None]) -> None:
        """A point as soon as the live run can take one (at ``icount`` or just after), then ``then()``."""
        if self.live:
            self._due = min(self._due, icount)
            self.requested = True
            self._then = then

    def next_cut(self, here: int, frontier: int) -> int | None:
        """The next icount a forward run must stop at for a point."""
        if self.live:
            after = (max(here, frontier) // VERIFY_INTERVAL + 1) * VERIFY_INTERVAL
            return self._due if self._due > here else after
        i = bisect.bisect_right(self._recorded, here)
        return self._recorded[i] if i < len(self._recorded) else None

    def note(self, machine: Machine, frontier: int, keyframes: Container[int]) -> None:
        """After a run: take (live, on new ground) or check (a recording) the point where the machine stands."""
        icount = machine.icount
        if not self.live:
            expected = self.points.get(icount)
            if expected is not None and machine.is_at_first_boundary:
                actual = verify_digest(machine)
                if actual != expected:
                    raise ReplayDivergence(icount, f"register digest {actual.hex()} differs from the recorded "
                                                   f"{expected.hex()}")  # fmt: skip
            return
        if icount >= frontier and icount >= self._due and icount not in keyframes:
            if machine.is_at_first_boundary:
                self.points.setdefault(icount, verify_digest(machine))
                self._due = (icount // VERIFY_INTERVAL + 1) * VERIFY_INTERVAL
                self._done()
            else:
                self._due = icount + 1  # a trap was entered right here: the next boundary
        elif self.requested:  # not where a point can be taken (inside history, a keyframe): flush only
            self._done()
        self.requested = False

    def _done(self) -> None:
        then, self._then = self._then, None
        if then is not None:
            then()
