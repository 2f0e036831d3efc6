"""gdbstub/rsp/codec.py with byte strings from the GDB manual's Remote Protocol appendix; no sockets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gdbstub.rsp.codec import Ack, BadPacket, Decoder, Interrupt, Nack, Packet, checksum, encode, escape, unescape


def test_known_framed_packets() -> None:
    assert encode(b"OK") == b"$OK#9a"
    assert encode(b"g") == b"$g#67"
    assert encode(b"") == b"$#00"
    assert checksum(b"?") == 0x3F


def test_decoder_reads_packets_acks_and_interrupts_in_order() -> None:
    events = Decoder().feed(b"+$g#67-\x03$?#3f")
    assert events == [Ack(), Packet(b"g"), Nack(), Interrupt(), Packet(b"?")]


def test_run_length_decoding_from_the_manual() -> None:
    """'0* ' means the same as '0000' (a space is 32: three more copies)."""
    raw = b"0* "
    assert Decoder().feed(b"$" + raw + b"#%02x" % checksum(raw)) == [Packet(b"0000")]


def test_escaping_from_the_manual() -> None:
    """0x7d is sent as 0x7d 0x5d; $, # and * are escaped the same way (XOR 0x20)."""
    assert escape(b"}") == b"}]"
    assert escape(b"a$b#c*") == b"a}\x04b}\x03c}\x0a"
    assert unescape(b"}]") == b"}"


def test_bad_checksum_is_reported_not_delivered() -> None:
    events = Decoder().feed(b"$g#00$g#67")
    assert isinstance(events[0], BadPacket) and "checksum" in events[0].reason
    assert events[1] == Packet(b"g")


def test_bad_checksum_digits() -> None:
    (event,) = Decoder().feed(b"$g#zz")
    assert isinstance(event, BadPacket)


def test_oversized_packet_is_dropped_and_decoding_recovers() -> None:
    decoder = Decoder(max_packet=16)
    big = b"m" * 100
    events = decoder.feed(b"$" + big + b"#%02x" % checksum(big) + b"$g#67")
    assert isinstance(events[0], BadPacket) and "longer" in events[0].reason
    assert events[1] == Packet(b"g")


def test_packet_interrupted_by_a_new_dollar() -> None:
    events = Decoder().feed(b"$mab$g#67")
    assert isinstance(events[0], BadPacket)
    assert events[1] == Packet(b"g")


def test_junk_between_packets_is_ignored() -> None:
    assert Decoder().feed(b"hello\x00\xff$g#67") == [Packet(b"g")]


def test_escape_at_end_and_rle_without_char_are_bad() -> None:
    for raw in (b"ab}", b"*!"):
        (event,) = Decoder().feed(b"$" + raw + b"#%02x" % checksum(raw))
        assert isinstance(event, BadPacket)


@given(st.binary(max_size=300))
def test_encode_then_decode_round_trips_any_payload(payload: bytes) -> None:
    framed = encode(payload)
    assert Decoder().feed(framed) == [Packet(payload)]


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=6), st.integers(min_value=1, max_value=7))
def test_any_chunking_gives_the_same_events(payloads: list[bytes], chunk: int) -> None:
    stream = b"".join(encode(p) for p in payloads)
    decoder = Decoder()
    events = []
    for i in range(0, len(stream), chunk):
        events += decoder.feed(stream[i : i + chunk])
    assert events == [Packet(p) for p in payloads]


# -- the whole-packet fast path of Decoder.feed decodes exactly as the byte-by-byte path -------------------
def _framed_with_bad_checksum(payload: bytes) -> bytes:
    return encode(payload)[:-2] + b"%02x" % ((checksum(escape(payload)) + 1) & 0xFF)


PIECES = st.one_of(
    st.binary(max_size=40).map(encode),  # well-formed packets
    st.binary(max_size=40).map(_framed_with_bad_checksum),
    st.binary(max_size=40).map(lambda p: encode(p)[: max(1, len(encode(p)) // 2)]),  # truncated
    st.binary(max_size=8).map(lambda p: b"$" + p + b"#zz"),  # bad digits
    st.lists(st.sampled_from(b"$#}*+-\x03ab0f"), max_size=12).map(bytes),  # framing characters anywhere
    st.sampled_from([b"+", b"-", b"\x03", b"$", b"#", b"}", b"*"]),
)


@given(st.lists(PIECES, max_size=12), st.integers(min_value=1, max_value=64))
def test_whole_chunks_decode_as_byte_by_byte(pieces: list[bytes], max_packet: int) -> None:
    stream = b"".join(pieces)
    bytewise = Decoder(max_packet)  # one byte per feed never holds a whole packet: always the general path
    expected = [event for b in stream for event in bytewise.feed(bytes((b,)))]
    assert Decoder(max_packet).feed(stream) == expected


@given(st.lists(PIECES, max_size=12), st.lists(st.integers(min_value=1, max_value=30), min_size=1))
def test_any_chunking_of_any_stream_gives_the_same_events(pieces: list[bytes], sizes: list[int]) -> None:
    stream = b"".join(pieces)
    expected = Decoder().feed(stream)
    decoder, events, at = Decoder(), [], 0
    while at < len(stream):
        size = sizes[at % len(sizes)]
        events += decoder.feed(stream[at : at + size])
        at += size
    assert events == expected


@given(st.binary(max_size=200))
def test_escape_matches_the_byte_by_byte_definition(payload: bytes) -> None:
    expected = b"".join(bytes((0x7D, b ^ 0x20)) if b in b"$#}*" else bytes((b,)) for b in payload)
    assert escape(payload) == expected
    assert encode(payload) == b"$" + expected + b"#" + b"%02x" % (sum(expected) % 256)
