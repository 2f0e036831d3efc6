"""The read-only TFTP server of QEMU's ``-netdev user,tftp=DIR`` (libslirp 4.7 ``tftp.c``), on 10.0.2.2:69.

What slirp does, reproduced: octet mode only; the ``tsize`` and ``blksize`` options (at most two are read,
blksize capped at 1428) answered with an OACK that waits for ACK 0; replies come from port 69 itself (no
new transfer port); every ACK from the client sends the next block (the block number is not checked);
a block shorter than the block size ends the session; an ERROR from the client ends it; a new RRQ from the
same address and port replaces its session; the error codes and messages are slirp's.

Where this differs, on purpose: the file is read whole when the RRQ arrives (a transfer is a snapshot, so
it depends only on the file and the frames); the name is resolved and must stay inside the directory
(slirp follows symlinks out of it); a write request gets an "Access violation" error (slirp ignores it);
with no clock, sessions never time out, and the least recently used one makes room for a twenty-first.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from .frames import Datagram

logger = logging.getLogger(__name__)

TFTP_PORT = 69
TFTP_SESSIONS_MAX = 20
TFTP_FILENAME_MAX = 512
TFTP_BLOCKSIZE_MAX = 1428
TFTP_BLOCKSIZE_DEFAULT = 512
TFTP_OPTIONS_MAX = 2  # slirp reads at most two options it knows


class Opcode(IntEnum):
    """TFTP packet types (RFC 1350, RFC 2347)."""

    RRQ = 1
    WRQ = 2
    DATA = 3
    ACK = 4
    ERROR = 5
    OACK = 6


class ErrorCode(IntEnum):
    """The TFTP error codes slirp sends, with its messages."""

    FILE_NOT_FOUND = 1
    ACCESS_VIOLATION = 2
    ILLEGAL_OPERATION = 4

    @property
    def message(self) -> bytes:
        """slirp's text for this error."""
        return {1: b"File not found", 2: b"Access violation", 4: b"Unsupported transfer mode"}[self.value]


@dataclass(slots=True)
class _Session:
    data: bytes
    block_size: int = TFTP_BLOCKSIZE_DEFAULT
    block_nr: int = 0  # blocks sent so far


class TftpServer:
    """Serves the files under ``root`` (every request is refused when it is None, as slirp without ``tftp=``)."""

    def __init__(self, root: Path | None) -> None:
        if root is not None and not Path(root).is_dir():
            raise NotADirectoryError(f"TFTP directory {root} is not a directory")
        self._root = None if root is None else Path(root).resolve()
        self._sessions: dict[tuple[bytes, int], _Session] = {}  # by client (address, port), least recent first

    def handle(self, request: Datagram) -> list[Datagram]:
        """The replies to one datagram sent to port 69."""
        if len(request.payload) < 2:
            return []
        opcode = int.from_bytes(request.payload[:2], "big")
        key = (request.src, request.sport)
        if opcode == Opcode.RRQ:
            return [request.reply(self._read_request(key, request.payload[2:]))]
        if opcode == Opcode.ACK:
            session = self._sessions.get(key)
            return [] if session is None else [request.reply(self._next_block(key, session))]
        if opcode == Opcode.ERROR:
            self._sessions.pop(key, None)
        elif opcode == Opcode.WRQ:
            return [request.reply(_error(ErrorCode.ACCESS_VIOLATION))]
        return []

    def close(self) -> None:
        """End every session."""
        self._sessions.clear()

    def _read_request(self, key: tuple[bytes, int], buf: bytes) -> bytes:
        """The answer to an RRQ (the checks in the order of slirp's ``tftp_handle_rrq``)."""
        self._sessions.pop(key, None)
        if self._root is None:
            return _error(ErrorCode.ACCESS_VIOLATION)
        end = buf.find(b"\0", 0, min(len(buf), TFTP_FILENAME_MAX))
        if end < 0:
            return _error(ErrorCode.ACCESS_VIOLATION)
        name, k = buf[:end], end + 1
        if len(buf) - k < 6:
            return _error(ErrorCode.ACCESS_VIOLATION)
        if _c_string(buf, k)[0].lower() != b"octet":
            return _error(ErrorCode.ILLEGAL_OPERATION)
        k += 6
        if not name or b"../" in name or name.endswith(b"/"):
            return _error(ErrorCode.ACCESS_VIOLATION)
        data = self._read_file(name)
        if isinstance(data, ErrorCode):
            return _error(data)
        if buf[-1] != 0:
            return _error(ErrorCode.ACCESS_VIOLATION)
        session = _Session(data)
        options: list[tuple[bytes, int]] = []
        while k < len(buf) and len(options) < TFTP_OPTIONS_MAX:
            key_name, k = _c_string(buf, k)
            if k >= len(buf):
                return _error(ErrorCode.ACCESS_VIOLATION)
            value, k = _c_string(buf, k)
            if key_name.lower() == b"tsize":
                options.append((b"tsize", (_atoi(value) or len(data)) & 0xFFFFFFFF))
            elif key_name.lower() == b"blksize" and _atoi(value) > 0:
                session.block_size = min(_atoi(value), TFTP_BLOCKSIZE_MAX)
                options.append((b"blksize", session.block_size))
        self._open_session(key, session)
        logger.debug("tftp: RRQ %r (%d bytes) options %s", name, len(data), options)
        if options:
            return struct.pack("!H", Opcode.OACK) + b"".join(k + b"\0" + b"%d\0" % v for k, v in options)
        return self._next_block(key, session)

    def _read_file(self, name: bytes) -> bytes | ErrorCode:
        """The file's contents, or why not: outside the directory, or no readable regular file there."""
        assert self._root is not None
        # Joined as text, as slirp does ("prefix/name"): a leading '/' names a file under the directory.
        candidate = Path(f"{self._root}/{os.fsdecode(name)}")
        try:
            resolved = candidate.resolve()
        except (OSError, RuntimeError):  # a symlink loop
            return ErrorCode.FILE_NOT_FOUND
        if not resolved.is_relative_to(self._root):
            logger.info("tftp: %r resolves outside %s", name, self._root)
            return ErrorCode.ACCESS_VIOLATION
        try:
            return resolved.read_bytes() if resolved.is_file() else ErrorCode.FILE_NOT_FOUND
        except OSError:
            return ErrorCode.FILE_NOT_FOUND

    def _open_session(self, key: tuple[bytes, int], session: _Session) -> None:
        if len(self._sessions) >= TFTP_SESSIONS_MAX:
            oldest = next(iter(self._sessions))
            logger.info("tftp: %d sessions open, ending the least recent", len(self._sessions))
            del self._sessions[oldest]
        self._sessions[key] = session

    def _next_block(self, key: tuple[bytes, int], session: _Session) -> bytes:
        """The next DATA packet (``tftp_send_next_block``); a short one ends the session."""
        start = session.block_nr * session.block_size
        chunk = session.data[start : start + session.block_size]
        packet = struct.pack("!HH", Opcode.DATA, (session.block_nr + 1) & 0xFFFF) + chunk
        session.block_nr += 1
        del self._sessions[key]
        if len(chunk) == session.block_size:
            self._sessions[key] = session  # re-inserted: now the most recently used
        return packet


def _error(code: ErrorCode) -> bytes:
    return struct.pack("!HH", Opcode.ERROR, code) + code.message + b"\0"


def _c_string(buf: bytes, start: int) -> tuple[bytes, int]:
    """The NUL-terminated string at ``start`` (to the end if unterminated) and the offset after its NUL."""
    end = buf.find(b"\0", start)
    end = len(buf) if end < 0 else end
    return buf[start:end], end + 1


def _atoi(text: bytes) -> int:
    """C's ``atoi``: optional blanks and sign, then digits; 0 when there are none; clamped to an ``int``."""
    text = text.lstrip(b" \t\n\r\f\v")
    sign = -1 if text[:1] == b"-" else 1
    text = text[1:] if text[:1] in (b"-", b"+") else text
    digits = text[: len(text) - len(text.lstrip(b"0123456789"))].lstrip(b"0")[:11]  # 11 digits overflow already
    return max(-(2**31), min(sign * int(digits or b"0"), 2**31 - 1))
