"""Blocks of packed records: what goes in comes out, and damage is refused."""

from __future__ import annotations

import hashlib
import math
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ystores.errors import CorruptStoreError
from ystores.history.packing import (
    BLOCK_VERSION,
    decode_block_header,
    pack_block,
    unpack_block,
)
from ystores.records import Record, RecordKind, encode_varuint

_records = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=1 << 40),
        st.binary(max_size=64),
        st.binary(max_size=16),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=60,
    unique_by=lambda entry: entry[0],
)


def _as_records(entries: list[tuple[int, bytes, bytes, float]]) -> list[Record]:
    return [Record(seq, update, meta, ts) for seq, update, meta, ts in sorted(entries)]


@given(_records)
def test_a_block_gives_back_exactly_the_records_packed(
    entries: list[tuple[int, bytes, bytes, float]],
) -> None:
    records = _as_records(entries)
    header, payload = pack_block(records)
    assert unpack_block(header, payload) == records
    decoded = decode_block_header(header)
    assert (decoded.first_seq, decoded.last_seq, decoded.count) == (
        records[0].seq,
        records[-1].seq,
        len(records),
    )
    assert (decoded.first_timestamp, decoded.last_timestamp) == (
        records[0].timestamp,
        records[-1].timestamp,
    )


def test_keystrokes_packed_together_take_far_less_room() -> None:
    records = [
        Record(
            seq,
            b"\x01\x01\xb4\xd2\xa8\x93\x0c"
            + bytes((seq % 200, 0x84))
            + b"\x01"
            + bytes((97 + seq % 26,)),
            b"",
            1.7e9 + seq * 0.2,
        )
        for seq in range(1, 1001)
    ]
    raw = sum(len(record.update) + 8 for record in records)
    header, payload = pack_block(records)
    # like updates sit column by column: 45x here (version 1, side by side: 4x)
    assert len(header) + len(payload) < raw / 20


@pytest.mark.parametrize("position", [0, 5, 40, -1])
def test_a_damaged_payload_is_refused(position: int) -> None:
    records = [Record(seq, bytes([seq]) * 10, b"who", float(seq)) for seq in range(1, 30)]
    header, payload = pack_block(records)
    plain = bytearray(zlib.decompress(payload))
    plain[position] ^= 0x01
    with pytest.raises(CorruptStoreError, match="digest"):
        unpack_block(header, zlib.compress(bytes(plain)))
    with pytest.raises(CorruptStoreError):
        unpack_block(header, payload[: len(payload) // 2])


@pytest.mark.parametrize("position", range(12))
def test_a_damaged_header_is_refused(position: int) -> None:
    records = [Record(seq, bytes([seq]) * 10, b"", float(seq)) for seq in range(3, 9)]
    header, payload = pack_block(records)
    damaged = bytearray(header)
    damaged[position] ^= 0x04
    with pytest.raises(CorruptStoreError):
        unpack_block(bytes(damaged), payload)
    with pytest.raises(CorruptStoreError):
        unpack_block(header[:position], payload)


def test_only_updates_in_seq_order_are_packed() -> None:
    with pytest.raises(ValueError, match="at least one"):
        pack_block([])
    with pytest.raises(ValueError, match="CHECKPOINT"):
        pack_block([Record(1, b"u", b"", 0.0, RecordKind.CHECKPOINT)])
    with pytest.raises(ValueError, match="increase"):
        pack_block([Record(2, b"u", b"", 0.0), Record(2, b"v", b"", 0.0)])


def _bits(value: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", value))[0])


def _same(got: list[Record], records: list[Record]) -> bool:
    """Equal record for record, timestamps bit for bit (NaN payloads, -0.0)."""
    return [(r.seq, r.update, r.metadata, r.kind, _bits(r.timestamp)) for r in got] == [
        (r.seq, r.update, r.metadata, r.kind, _bits(r.timestamp)) for r in records
    ]


_timestamps = st.one_of(
    st.floats(),  # NaN, infinities, -0.0, subnormals included
    st.integers(min_value=0, max_value=(1 << 64) - 1).map(
        lambda bits: float(struct.unpack("<d", struct.pack("<Q", bits))[0])
    ),  # any bit pattern: NaN payloads, signalling NaNs
    st.floats(min_value=1.7e9, max_value=1.8e9),  # clock-like
)
_entries = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=1 << 20),  # seq gap
        st.one_of(
            st.binary(max_size=300),
            st.sampled_from([b"", b"\x01\x01\xb4\xd2\xa8\x93\x0c\x02\x84\x01c", bytes(300)]),
        ),
        st.binary(max_size=40),
        _timestamps,
    ),
    min_size=1,
    max_size=120,
)


@st.composite
def _blocks(draw: st.DrawFn) -> list[Record]:
    first = draw(st.integers(min_value=1, max_value=1 << 62))
    records = []
    seq = first - 1
    for gap, update, metadata, timestamp in draw(_entries):
        seq += gap
        records.append(Record(seq, update, metadata, timestamp))
    return records


@settings(max_examples=300)
@given(_blocks())
def test_any_records_come_back_exactly(records: list[Record]) -> None:
    header, payload = pack_block(records)
    assert header[0] == BLOCK_VERSION
    assert _same(unpack_block(header, payload), records)


@settings(max_examples=200)
@given(_blocks(), st.data())
def test_any_damage_is_refused_never_misread(records: list[Record], data: st.DataObject) -> None:
    header, payload = pack_block(records)
    plain = bytearray(zlib.decompress(payload))
    at = data.draw(st.integers(min_value=0, max_value=len(plain) - 1), label="payload byte")
    plain[at] ^= data.draw(st.integers(min_value=1, max_value=255), label="flip")
    with pytest.raises(CorruptStoreError):
        unpack_block(header, zlib.compress(bytes(plain)))
    stored = bytearray(payload)
    at = data.draw(st.integers(min_value=0, max_value=len(stored) - 1), label="stored byte")
    stored[at] ^= data.draw(st.integers(min_value=1, max_value=255), label="flip")
    try:
        back = unpack_block(header, bytes(stored))
    except CorruptStoreError:
        pass
    else:
        # Deflate ignores some bits (the last byte's padding, for one): a flip there
        # changes nothing that is decoded, and the records must come back exactly.
        assert zlib.decompress(bytes(stored)) == zlib.decompress(payload)
        assert _same(back, records)
    damaged = bytearray(header)
    at = data.draw(st.integers(min_value=0, max_value=len(damaged) - 1), label="header byte")
    damaged[at] ^= data.draw(st.integers(min_value=1, max_value=255), label="flip")
    with pytest.raises(CorruptStoreError):
        unpack_block(bytes(damaged), payload)
    cut = data.draw(st.integers(min_value=0, max_value=len(header) - 1), label="header cut")
    with pytest.raises(CorruptStoreError):
        unpack_block(header[:cut], payload)


def _with_digest(fields: bytes, plain: bytes) -> tuple[bytes, bytes]:
    digest = hashlib.blake2b(fields + plain, digest_size=16).digest()
    return fields + digest, zlib.compress(plain)


@pytest.mark.parametrize(
    "plain",
    [
        b"\x01" + bytes(8) + b"\x00" + b"\x05" + b"ab",  # an update longer than what is left
        b"\x01" + bytes(8) + b"\x00" + b"\x01" + b"ab",  # bytes left over
        b"\x01" + bytes(3),  # the timestamps cut short
        b"",
    ],
)
def test_a_payload_whose_digest_matches_but_does_not_add_up_is_refused(plain: bytes) -> None:
    fields = bytes((BLOCK_VERSION,)) + encode_varuint(1) + encode_varuint(1) + encode_varuint(1)
    fields += struct.pack("<dd", 0.0, 0.0)
    with pytest.raises(CorruptStoreError, match="add up"):
        unpack_block(*_with_digest(fields, plain))


# A version 1 block (float64 timestamps, updates in seq order), as ystores wrote it
# before version 2: read forever.
_V1_HEADER = "0107ac0205c78e67ae8956da410100000000000000e033c7c2c530573f951bead61203d5e5"
_V1_PAYLOAD = (
    "78da636464665cc074bc2f7d5d67d82dc785731ac13403043440a80ff58c500106560626666e6e06ee138c"
    "893999c9a90cff93f2931819b75c5a319987a1853111ca646c61848932b5302633303231b3b0b2b17370"
    "7271f3f0f2f10b080a098b888a894b484a49cbc8cac92b282a29aba8aaa96b686a69ebe8eae91b181a19"
    "9b989a995b585a59dbd8dad93b383a39bbb8bab97b787a79fbf8faf9070406058784868547444645c7c4"
    "c6c527242625a7a4a6a567646665e7e4e6e5171416159794969557545655d7d4d6d537343635b7b4b6b5"
    "77747675f7f4f6f54f983869f294a9d3a6cf98396bf69cb9f3e62f58b868f192a5cb96af58b96af59ab5"
    "ebd66fd8b869f396addbb6efd8b96bf79ebdfbf61f3878e8f091a3c78e03003e4d6968"
)
_V1_RECORDS = [
    Record(7, b"\x01\x01\xb4\xd2\xa8\x93\x0c\x00\x84\x01a", b"", 1767515833.6180894),
    Record(8, b"\x01\x01\xb4\xd2\xa8\x93\x0c\x01\x84\x01b", b"alice", 1767515834.0251849),
    Record(11, b"", b"", -0.0),
    Record(12, b"\x01\x01\xb4\xd2\xa8\x93\x0c\x02\x84\x01c", b"\x00\xff", math.inf),
    Record(300, bytes(range(200)), b"bob", 5e-324),
]


def test_a_version_1_block_is_still_read() -> None:
    header, payload = bytes.fromhex(_V1_HEADER), bytes.fromhex(_V1_PAYLOAD)
    assert decode_block_header(header).version == 1
    assert _same(unpack_block(header, payload), _V1_RECORDS)
    damaged = bytearray(zlib.decompress(payload))
    damaged[-1] ^= 1
    with pytest.raises(CorruptStoreError, match="digest"):
        unpack_block(header, zlib.compress(bytes(damaged)))
