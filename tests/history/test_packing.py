"""Blocks of packed records: what goes in comes out, and damage is refused."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ystores.errors import CorruptStoreError
from ystores.history.packing import decode_block_header, pack_block, unpack_block
from ystores.records import Record, RecordKind

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
    assert len(header) + len(payload) < raw / 3


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
