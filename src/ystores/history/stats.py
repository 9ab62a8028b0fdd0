"""The shape of a document's history, as checkpoint policies and `ystore inspect` see it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HistoryStats"]


@dataclass(frozen=True)
class HistoryStats:
    """What a document's history holds and what it costs (`BaseYStore.history_stats`).

    "The base" is where a restore starts: the latest valid checkpoint, or the
    latest snapshot when no valid checkpoint covers more (nothing without either).

    Attributes:
        records: Records kept (updates and snapshots; checkpoints not counted).
        checkpoints: Checkpoint records kept (damaged ones included).
        records_since: Records a restore replays after the base (what
            `CheckpointPolicy.due` compares with `every_updates`).
        bytes_since: Stored bytes of those records' updates.
        base_covers: The highest seq the base holds (0 without a base).
        oldest: Timestamp of the oldest state kept: that of the first record,
            or of a snapshot's last merged record when history before it was
            squashed or dropped (None without records).
        newest: Timestamp of the newest record (None without records).
        last_seq: The highest seq stored (checkpoints included).
        stored_bytes: Bytes of updates as stored, checkpoints included.
        raw_bytes: The same bytes decompressed (equal to `stored_bytes`
            without compression).
    """

    records: int
    checkpoints: int
    records_since: int
    bytes_since: int
    base_covers: int
    oldest: float | None
    newest: float | None
    last_seq: int
    stored_bytes: int
    raw_bytes: int

    @property
    def compression_ratio(self) -> float:
        """Raw bytes per stored byte (1.0 without compression or without records)."""
        return self.raw_bytes / self.stored_bytes if self.stored_bytes else 1.0
