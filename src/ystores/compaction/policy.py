"""When a document's log is due for a squash, and what a squash reports."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CompactionPolicy", "LogStats", "SquashReport"]


@dataclass(frozen=True)
class LogStats:
    """The shape of a document's log, as a policy sees it.

    Attributes:
        tail_records: Records after the latest snapshot (all records without one).
        tail_bytes: Bytes of updates in those records.
        has_snapshot: Whether the log starts with a snapshot.
        last_write: Timestamp of the newest record, None for an empty log.
        last_seq: Seq of the newest record (0 for an empty log).
    """

    tail_records: int
    tail_bytes: int
    has_snapshot: bool
    last_write: float | None
    last_seq: int

    @property
    def squashable(self) -> bool:
        """Whether a squash would shorten the log (it holds more than one record)."""
        return self.tail_records + self.has_snapshot > 1


@dataclass(frozen=True)
class CompactionPolicy:
    """When to squash a document: any condition that is set and met makes it due.

    Attributes:
        ttl: Seconds without a write after which the document is squashed
            (ypy-websocket's `document_ttl`).
        max_updates: Squash once more than this many records follow the snapshot,
            so busy documents are compacted too.
        max_bytes: Squash once the records after the snapshot hold more bytes.
    """

    ttl: float | None = None
    max_updates: int | None = None
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        for name in ("ttl", "max_updates", "max_bytes"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"A compaction policy's {name} must not be negative: {value}.")

    @property
    def enabled(self) -> bool:
        """Whether any condition is set."""
        return (self.ttl, self.max_updates, self.max_bytes) != (None, None, None)

    def due(self, stats: LogStats, now: float) -> str | None:
        """Why the log is due for a squash at time `now`, or None if it is not."""
        if not stats.squashable:
            return None
        if self.max_updates is not None and stats.tail_records > self.max_updates:
            return f"{stats.tail_records} records since the last snapshot"
        if self.max_bytes is not None and stats.tail_bytes > self.max_bytes:
            return f"{stats.tail_bytes} bytes since the last snapshot"
        if self.ttl is not None and stats.last_write is not None:
            idle = now - stats.last_write
            if idle >= self.ttl:
                return f"idle for {idle:.0f} s"
        return None


@dataclass(frozen=True)
class SquashReport:
    """What a squash did to one document.

    Attributes:
        doc: The document.
        records_before: Records in the log before (snapshot included).
        records_after: Records after: the snapshot plus any written meanwhile.
        bytes_before: Bytes of updates before.
        bytes_after: Bytes of updates after.
        cut_seq: The snapshot's seq: every record up to it was merged into it.
        seconds: How long the squash took.
    """

    doc: str
    records_before: int
    records_after: int
    bytes_before: int
    bytes_after: int
    cut_seq: int
    seconds: float
