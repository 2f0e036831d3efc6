"""TCP as the user network speaks it on its side of a relayed connection: sans-IO, one object per connection.

libslirp terminates every guest TCP connection itself (``tcp_input.c``, ``tcp_output.c``) and relays the byte
stream to a host socket. This is that TCP end reduced to what a lossless virtual link needs, with no clock:

- the handshake both ways: active for a host forward (``hostfwd``: the SYN comes from the user network, as
  slirp's ``tcp_connect``), passive for a guest connecting to 10.0.2.2 (the guest's SYN waits, in LISTEN,
  until the host connection is made: then SYN-ACK, or RST if the host refused, as slirp's ``tcp_fconnect``);
- sequence and acknowledgement numbers modulo 2**32; the MSS option: 1460 sent (slirp: ``if_mtu`` 1500 - 40),
  the guest's honoured (536 without one); no window scaling or timestamps (slirp's ``TCP_DO_RFC1323`` 0);
- a receive window: the free space of a 64 KiB - 1 buffer that the host side drains (:meth:`TcpConnection.read`);
  segments are taken in order only: one beyond ``rcv_nxt`` is dropped and answered with a duplicate ACK, the
  overlapping part of a retransmitted one is trimmed, one outside the window is answered with an ACK (RFC 9293
  3.10.7.4); RST and SYN in the window but not at ``rcv_nxt`` get a challenge ACK (RFC 5961);
- the guest's window respected: nothing but a FIN is sent into a zero window;
- FIN and RST both ways, with the states of RFC 9293.

Left out, on purpose: retransmission timers (the link loses nothing; three duplicate ACKs resend from
``snd_una``, go-back-N, in case the guest dropped something), zero-window probes (a guest that opens its window
sends a window update), delayed ACKs (every segment with data or a FIN is acknowledged at once, so what the guest
receives depends only on what it sent and on the host's bytes), urgent data, and the expiry of TIME_WAIT (no
clock: the relay keeps a bounded number of them).
"""

from __future__ import annotations

import enum

from .tcp_segment import (
    ACK,
    FIN,
    PSH,
    RST,
    SEQ_MASK,
    SYN,
    Endpoint,
    TcpFlag,
    TcpSegment,
    format_endpoint,
    seq_add,
    seq_diff,
)

TCP_MSS = 1460  # the MSS slirp sends: if_mtu 1500 - 40 (tcp_newtcpcb)
TCP_DEFAULT_MSS = 536  # a peer's MSS when its SYN has no option (RFC 9293 3.7.1)
TCP_MAXWIN = 65535  # the largest window without window scaling
TCP_BUFFER_SIZE = 65535  # each direction's buffer: the receive window is its free space
TCP_DUP_ACK_THRESHOLD = 3


class TcpState(enum.Enum):
    """RFC 9293's connection states; LISTEN holds a guest's SYN until the host connection is made."""

    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"
    CLOSED = "CLOSED"


_SYNCHRONIZED = frozenset(TcpState) - {TcpState.LISTEN, TcpState.SYN_SENT, TcpState.CLOSED}
_SENDING = frozenset({TcpState.ESTABLISHED, TcpState.CLOSE_WAIT, TcpState.FIN_WAIT_1, TcpState.CLOSING,
                      TcpState.LAST_ACK})  # fmt: skip
_RECEIVING = frozenset({TcpState.ESTABLISHED, TcpState.FIN_WAIT_1, TcpState.FIN_WAIT_2})


class TcpConnection:
    """One TCP connection between the user network (``local``, e.g. 10.0.2.2:port) and the guest (``remote``).

    Segments from the guest go in with :meth:`segment_received`; segments for the guest come out of
    :meth:`take_segments`. The host side writes with :meth:`send` (at most :attr:`send_space` bytes),
    reads with :meth:`peek`/:meth:`consume`, ends its direction with :meth:`shutdown` (FIN once the data
    is sent) and breaks the connection with :meth:`abort` (RST).
    """

    def __init__(self, local: Endpoint, remote: Endpoint, *, iss: int, buffer_size: int = TCP_BUFFER_SIZE) -> None:
        if not 0 < buffer_size <= TCP_MAXWIN:
            raise ValueError(f"buffer_size must be 1..{TCP_MAXWIN}, not {buffer_size}")
        self.local = local
        self.remote = remote
        self.state = TcpState.CLOSED
        self.was_reset = False  # the guest reset the connection (RST)
        self._buffer_size = buffer_size
        self._iss = iss & SEQ_MASK
        self._snd_una = self._snd_nxt = self._snd_max = self._iss
        self._snd_wnd = self._snd_wl1 = self._snd_wl2 = 0
        self._send_mss = TCP_DEFAULT_MSS
        self._send_buf = bytearray()  # data from _buf_seq on: sent and unacknowledged, then unsent
        self._buf_seq = seq_add(self._iss, 1)
        self._fin_seq: int | None = None  # where our FIN goes, once the host side has shut down
        self._irs = self._rcv_nxt = 0
        self._recv_buf = bytearray()  # in-order data from the guest the host side has not read yet
        self._fin_received = False
        self._adv_edge = 0  # rcv_nxt + window, as last advertised
        self._dup_acks = 0
        self._ack_due = False
        self._outbox: list[TcpSegment] = []

    @classmethod
    def connect(cls, local: Endpoint, remote: Endpoint, *, iss: int,
                buffer_size: int = TCP_BUFFER_SIZE) -> TcpConnection:  # fmt: skip
        """An active open (slirp's ``tcp_connect`` for a host forward): a SYN to ``remote`` waits in the outbox."""
        conn = cls(local, remote, iss=iss, buffer_size=buffer_size)
        conn.state = TcpState.SYN_SENT
        conn._send_syn()
        return conn

    @classmethod
    def listen(cls, syn: TcpSegment, *, iss: int, buffer_size: int = TCP_BUFFER_SIZE) -> TcpConnection:
        """A guest's connection request, held (LISTEN) until :meth:`accept` or :meth:`refuse`."""
        conn = cls((syn.dst, syn.dport), (syn.src, syn.sport), iss=iss, buffer_size=buffer_size)
        conn.state = TcpState.LISTEN
        conn._take_syn(syn)
        return conn

    # The host side

    @property
    def is_established(self) -> bool:
        """Whether the handshake is done (data may flow)."""
        return self.state in _SYNCHRONIZED and self.state != TcpState.SYN_RECEIVED

    @property
    def is_finished(self) -> bool:
        """CLOSED, or TIME-WAIT: nothing more will be sent or received."""
        return self.state in (TcpState.CLOSED, TcpState.TIME_WAIT)

    @property
    def send_space(self) -> int:
        """How many bytes :meth:`send` takes now: none before the handshake or after :meth:`shutdown`."""
        if self.state not in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT) or self._fin_seq is not None:
            return 0
        return self._buffer_size - len(self._send_buf)

    def send(self, data: bytes) -> int:
        """Queue bytes for the guest; returns how many were taken (at most :attr:`send_space`)."""
        taken = min(len(data), self.send_space)
        if taken:
            self._send_buf += data[:taken]
            self._transmit()
        return taken

    @property
    def received(self) -> int:
        """How many bytes from the guest wait to be read."""
        return len(self._recv_buf)

    def peek(self, max_bytes: int = TCP_BUFFER_SIZE) -> bytes:
        """Up to ``max_bytes`` of the guest's data, left in place."""
        return bytes(self._recv_buf[:max_bytes])

    def consume(self, count: int) -> None:
        """Drop ``count`` bytes read with :meth:`peek`; a window update follows when the window opened enough
        (by two segments or half the buffer, or from zero: receiver-side silly window avoidance)."""
        del self._recv_buf[: max(0, count)]
        if self.state in _RECEIVING and not self._fin_received:
            window = self._rcv_window()
            opened = seq_diff(seq_add(self._rcv_nxt, window), self._adv_edge)
            if opened >= min(2 * TCP_MSS, self._buffer_size // 2) or (self._adv_edge == self._rcv_nxt and window):
                self._ack_due = True
                self._transmit()

    def read(self, max_bytes: int = TCP_BUFFER_SIZE) -> bytes:
        """:meth:`peek` and :meth:`consume` in one."""
        data = self.peek(max_bytes)
        self.consume(len(data))
        return data

    @property
    def at_eof(self) -> bool:
        """The guest sent its FIN and every byte before it has been read: the host side may shut down writing."""
        return self._fin_received and not self._recv_buf

    def shutdown(self) -> None:
        """The host side sends no more: a FIN follows the queued data (before the handshake ends the connection
        silently, as slirp's ``tcp_sockclosed`` in SYN-SENT)."""
        if self.state in (TcpState.SYN_SENT, TcpState.LISTEN):
            self.state = TcpState.CLOSED
            return
        if self.is_finished or self._fin_seq is not None:
            return
        self._fin_seq = seq_add(self._buf_seq, len(self._send_buf))
        self._transmit()

    def abort(self) -> None:
        """Break the connection: a RST to the guest (slirp's ``tcp_drop``), everything queued dropped."""
        if self.state == TcpState.LISTEN:
            self.refuse()
            return
        if self.state in _SYNCHRONIZED and self.state != TcpState.TIME_WAIT:
            self._emit(RST | ACK, self._snd_nxt)
        self._close()

    def accept(self) -> None:
        """The host connection for a guest's SYN is made: SYN-ACK."""
        if self.state == TcpState.LISTEN:
            self.state = TcpState.SYN_RECEIVED
            self._send_syn()

    def refuse(self) -> None:
        """The host refused a guest's connection: RST-ACK, as slirp does when its ``connect()`` fails."""
        if self.state == TcpState.LISTEN:
            self._emit(RST | ACK, 0)
            self._close()

    def take_segments(self) -> list[TcpSegment]:
        """The segments for the guest since the last call, in order."""
        segments, self._outbox = self._outbox, []
        return segments

    # Segments from the guest

    def segment_received(self, segment: TcpSegment) -> None:
        """Take one segment of this connection from the guest (RFC 9293 3.10.7, "SEGMENT ARRIVES")."""
        if self.state == TcpState.CLOSED:
            return
        if self.state == TcpState.LISTEN:
            if segment.flags & RST:  # the guest gave up before the host answered
                self._close()
            return  # a repeated SYN: the answer comes when the host connection is made
        if self.state == TcpState.SYN_SENT:
            self._syn_sent_input(segment)
        else:
            self._synchronized_input(segment)

    def _syn_sent_input(self, seg: TcpSegment) -> None:
        if seg.flags & ACK and not (seq_diff(seg.ack, self._iss) > 0 and seq_diff(seg.ack, self._snd_max) <= 0):
            if not seg.flags & RST:
                self._emit(RST, seg.ack)
            return
        if seg.flags & RST:
            if seg.flags & ACK:  # connection refused by the guest
                self._reset()
            return
        if not seg.flags & SYN:
            return
        self._take_syn(seg)
        if seg.flags & ACK:
            self._snd_una = seg.ack
            self._enter_established(seg)
            self._ack_due = True
            self._transmit()
        else:  # simultaneous open
            self.state = TcpState.SYN_RECEIVED
            self._send_syn()

    def _synchronized_input(self, seg: TcpSegment) -> None:
        window = self._rcv_window()
        if not self._acceptable(seg, window):
            if seg.flags & RST:
                return
            if self.state == TcpState.SYN_RECEIVED and seg.flags & SYN and seg.seq == self._irs:
                self._send_syn()  # the guest repeats its SYN: our SYN-ACK again
                return
            if window == 0 and seg.seq == self._rcv_nxt and seg.flags & ACK and not seg.flags & SYN:
                self._process_ack(seg)  # a full buffer still takes ACKs (RFC 9293 3.10.7.4)
            self._ack_due = True
            self._transmit()
            return
        if seg.flags & (RST | SYN):
            if seg.flags & RST and seg.seq == self._rcv_nxt:
                self._reset()
            else:  # in the window but not exact: a challenge ACK (RFC 5961 3.2, 4.2)
                self._ack_due = True
                self._transmit()
            return
        if not seg.flags & ACK:
            return
        if self.state == TcpState.SYN_RECEIVED:
            if not (seq_diff(seg.ack, self._snd_una) > 0 and seq_diff(seg.ack, self._snd_max) <= 0):
                self._emit(RST, seg.ack)
                return
            self._enter_established(seg)
        if not self._process_ack(seg) or self.state == TcpState.CLOSED:
            return
        self._process_data(seg)
        self._transmit()

    def _acceptable(self, seg: TcpSegment, window: int) -> bool:
        """RFC 9293's acceptance test: does the segment overlap the receive window?"""
        start = seq_diff(seg.seq, self._rcv_nxt)
        if seg.length == 0:
            return start == 0 if window == 0 else 0 <= start < window
        if window == 0:
            return False
        end = start + seg.length - 1
        return 0 <= start < window or 0 <= end < window

    def _process_ack(self, seg: TcpSegment) -> bool:
        """The ACK field and the window; False when the segment acknowledges data never sent (it is dropped)."""
        ack = seg.ack
        if seq_diff(ack, self._snd_max) > 0:
            self._ack_due = True
            self._transmit()
            return False
        if seq_diff(ack, self._snd_una) > 0:
            acked = min(max(seq_diff(ack, self._buf_seq), 0), len(self._send_buf))
            del self._send_buf[:acked]
            self._buf_seq = seq_add(self._buf_seq, acked)
            self._snd_una = ack
            if seq_diff(ack, self._snd_nxt) > 0:
                self._snd_nxt = ack
            self._dup_acks = 0
        elif (ack == self._snd_una and seg.length == 0 and seg.window == self._snd_wnd
              and self._snd_max != self._snd_una):  # fmt: skip
            self._dup_acks += 1
            if self._dup_acks == TCP_DUP_ACK_THRESHOLD:  # the guest lost something: send again from snd_una
                self._dup_acks = 0
                self._snd_nxt = self._snd_una
        if seq_diff(seg.seq, self._snd_wl1) > 0 or (seg.seq == self._snd_wl1 and seq_diff(ack, self._snd_wl2) >= 0):
            self._snd_wnd, self._snd_wl1, self._snd_wl2 = seg.window, seg.seq, ack
        if self._fin_seq is not None and seq_diff(self._snd_una, self._fin_seq) > 0:  # our FIN is acknowledged
            if self.state == TcpState.FIN_WAIT_1:
                self.state = TcpState.FIN_WAIT_2
            elif self.state == TcpState.CLOSING:
                self.state = TcpState.TIME_WAIT
            elif self.state == TcpState.LAST_ACK:
                self.state = TcpState.CLOSED  # what the guest sent before its FIN may still wait to be read
        return True

    def _process_data(self, seg: TcpSegment) -> None:
        """Take the segment's new data and FIN, in order only."""
        if not seg.payload and not seg.flags & FIN:
            return
        if self.state not in _RECEIVING:
            self._ack_due = True  # data after the guest's FIN: not taken, acknowledged as it stands
            return
        self._ack_due = True
        have = seq_diff(self._rcv_nxt, seg.seq)  # bytes of the payload already received
        if have < 0:  # beyond a gap: dropped, the duplicate ACK tells the guest where the stream stands
            return
        fresh = seg.payload[have : have + self._rcv_window()]
        self._recv_buf += fresh
        self._rcv_nxt = seq_add(self._rcv_nxt, len(fresh))
        if seg.flags & FIN and have + len(fresh) == len(seg.payload):
            self._rcv_nxt = seq_add(self._rcv_nxt, 1)
            self._fin_received = True
            self.state = {
                TcpState.ESTABLISHED: TcpState.CLOSE_WAIT,
                TcpState.FIN_WAIT_1: TcpState.CLOSING,
                TcpState.FIN_WAIT_2: TcpState.TIME_WAIT,
            }[self.state]

    # Sending

    def _rcv_window(self) -> int:
        return min(self._buffer_size - len(self._recv_buf), TCP_MAXWIN)

    def _take_syn(self, syn: TcpSegment) -> None:
        self._irs = syn.seq
        self._rcv_nxt = seq_add(syn.seq, 1)
        self._send_mss = min(syn.mss or TCP_DEFAULT_MSS, TCP_MSS)
        self._snd_wnd, self._snd_wl1, self._snd_wl2 = syn.window, syn.seq, 0

    def _enter_established(self, seg: TcpSegment) -> None:
        self.state = TcpState.ESTABLISHED
        self._snd_wnd, self._snd_wl1, self._snd_wl2 = seg.window, seg.seq, seg.ack

    def _send_syn(self) -> None:
        flags = SYN | ACK if self.state == TcpState.SYN_RECEIVED else SYN
        self._emit(flags, self._iss, mss=TCP_MSS)
        self._snd_nxt = seq_add(self._iss, 1)
        if seq_diff(self._snd_nxt, self._snd_max) > 0:
            self._snd_max = self._snd_nxt

    def _transmit(self) -> None:
        """Send what the guest's window allows, then the FIN when due; an ACK if one is owed and none went."""
        if self.state in _SENDING:
            while True:
                offset = seq_diff(self._snd_nxt, self._buf_seq)
                remaining = len(self._send_buf) - offset
                if remaining > 0:
                    room = seq_diff(seq_add(self._snd_una, self._snd_wnd), self._snd_nxt)
                    if room <= 0:
                        break
                    size = min(remaining, room, self._send_mss)
                    last = size == remaining
                    fin = last and self._fin_seq is not None
                    flags = ACK | (PSH if last else 0) | (FIN if fin else 0)
                    self._emit(flags, self._snd_nxt, bytes(self._send_buf[offset : offset + size]))
                    self._advance(size + fin)
                    continue
                if self._fin_seq is not None and self._snd_nxt == self._fin_seq:
                    self._emit(FIN | ACK, self._snd_nxt)
                    self._advance(1)
                break
        if self._ack_due and self.state in _SYNCHRONIZED:
            self._emit(ACK, self._snd_nxt)

    def _advance(self, count: int) -> None:
        before = self._snd_nxt
        self._snd_nxt = seq_add(self._snd_nxt, count)
        if seq_diff(self._snd_nxt, self._snd_max) > 0:
            self._snd_max = self._snd_nxt
        fin = self._fin_seq
        if fin is not None and seq_diff(fin, before) >= 0 and seq_diff(self._snd_nxt, fin) > 0:  # the FIN went
            if self.state == TcpState.ESTABLISHED:
                self.state = TcpState.FIN_WAIT_1
            elif self.state == TcpState.CLOSE_WAIT:
                self.state = TcpState.LAST_ACK

    def _emit(self, flags: TcpFlag, seq: int, payload: bytes = b"", mss: int | None = None) -> None:
        ack = self._rcv_nxt if flags & ACK else 0
        window = self._rcv_window()
        self._outbox.append(TcpSegment(*self.local, *self.remote, seq, ack, TcpFlag(flags), window, payload, mss))
        if flags & ACK:
            self._adv_edge = seq_add(self._rcv_nxt, window)
            self._ack_due = False

    def _reset(self) -> None:
        self.was_reset = True
        self._close()

    def _close(self) -> None:
        """Closed abnormally (RST either way, a refused connection): whatever was queued is dropped."""
        self.state = TcpState.CLOSED
        self._send_buf.clear()
        self._recv_buf.clear()
        self._ack_due = False

    def __repr__(self) -> str:
        return f"<TcpConnection {format_endpoint(self.local)} - {format_endpoint(self.remote)} {self.state.value}>"
