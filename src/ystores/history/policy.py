"""How much history a store keeps, and when it writes checkpoints."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CheckpointPolicy", "RetentionPolicy"]


@dataclass(frozen=True)
class CheckpointPolicy:
    """When a running store writes a checkpoint in the background (never in the write path).

    A checkpoint is due once more than `every_updates` records, or more than
    `every_bytes` bytes of updates, follow the latest checkpoint (or snapshot).
    A restore applies the latest checkpoint, then replays those records.

    The defaults (250 records, 1 MiB) bound that replay: about 0.4 ms for 250
    keystrokes, 4 ms for 1 MiB of large updates. Each checkpoint writes the whole
    document and costs a merge and its verification in the background (about
    0.3 s of CPU for a 183 KB document of 50,000 keystrokes), so denser
    checkpoints cost background work and bytes written, not restore time; `pack()`
    thins the old ones. See "Trade-offs, measured" in the history docs.

    Attributes:
        every_updates: Records after the latest checkpoint that make one due.
        every_bytes: Bytes of updates after the latest checkpoint that make one due.
    """

    every_updates: int | None = 250
    every_bytes: int | None = 1 << 20

    def __post_init__(self) -> None:
        for name in ("every_updates", "every_bytes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"A checkpoint policy's {name} must be at least 1: {value}.")

    def due(self, records_since: int, bytes_since: int) -> bool:
        """Whether a checkpoint is due with this much log after the latest one."""
        if self.every_updates is not None and records_since > self.every_updates:
            return True
        return self.every_bytes is not None and bytes_since > self.every_bytes


@dataclass(frozen=True)
class RetentionPolicy:
    """How much of a document's history is kept record by record.

    History older than what is kept is merged into a checkpoint (the records it
    covers are deleted); the document's content never changes. Exactly one of:

    - `RetentionPolicy.all()`: keep everything (the default);
    - `RetentionPolicy.none()`: keep nothing (today's squash: one snapshot);
    - `RetentionPolicy(window=30 * 86400)`: keep records younger than the window;
    - `RetentionPolicy(budget=64 << 20)`: keep the newest records that fit the
      byte budget (stored bytes of updates).

    Attributes:
        window: Seconds of history to keep, counted back from now.
        budget: Stored bytes of history to keep.
        keep_all: Keep every record.
    """

    window: float | None = None
    budget: int | None = None
    keep_all: bool = False

    def __post_init__(self) -> None:
        chosen = (self.window is not None) + (self.budget is not None) + self.keep_all
        if chosen > 1:
            raise ValueError("A retention policy keeps all, a window or a budget, not several.")
        if self.window is not None and self.window < 0:
            raise ValueError(f"A retention window must not be negative: {self.window}.")
        if self.budget is not None and self.budget < 0:
            raise ValueError(f"A retention budget must not be negative: {self.budget}.")

    @classmethod
    def all(cls) -> RetentionPolicy:
        """Keep every record."""
        return cls(keep_all=True)

    @classmethod
    def none(cls) -> RetentionPolicy:
        """Keep no history: everything is merged into one snapshot (a squash)."""
        return cls(window=0.0)

    @property
    def keeps_nothing(self) -> bool:
        """Whether this policy is a plain squash."""
        return self.window == 0.0 or self.budget == 0

    def describe(self) -> str:
        """One line for reports and the CLI."""
        if self.keep_all or (self.window is None and self.budget is None):
            return "keep all history"
        if self.keeps_nothing:
            return "keep no history (squash)"
        if self.window is not None:
            return f"keep {_duration(self.window)} of history"
        return f"keep {_size(self.budget or 0)} of history"


def _duration(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds / size
            return f"{count:g} {unit}" + ("" if count == 1 else "s")
    return f"{seconds:g} s"


def _size(budget: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if budget >= size and budget % size == 0:
            return f"{budget // size} {unit}"
    return f"{budget} bytes"
