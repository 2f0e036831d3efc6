"""Verification points: the one policy and the one digest (QEMU's replay checks, made explicit).

A recorded run (``record``, or a live ``serve`` history) logs a digest of the registers at every multiple
of :data:`VERIFY_INTERVAL` it passes; any replay of the recording that passes one of those icounts checks
it, so a recording made by ``record`` and one saved by ``monitor record save`` are checked the same way.
The recording's header states the interval, and a reader refuses a recording whose verification points are
further apart than that: the length of a replay is bounded by the size of the file.
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
