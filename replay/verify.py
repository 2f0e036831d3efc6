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

import hashlib

from machine.machine import Machine

VERIFY_INTERVAL = 1 << 20
VERIFY_DIGEST_BYTES = 16


def verify_digest(machine: Machine) -> bytes:
    """16 bytes identifying the hart's registers and CSRs now (not RAM: see :func:`machine.state.state_digest`)."""
    h = hashlib.sha256()
    for value in (*machine.hart.registers(), *machine.hart.digest_csrs()):
        h.update(value.to_bytes(16, "little", signed=True))
    return h.digest()[:VERIFY_DIGEST_BYTES]
