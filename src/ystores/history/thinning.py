"""Which old checkpoints to keep: the newest few, then one every so many records.

Each checkpoint holds the whole document, so keeping every one makes a long
history cost its size many times over. A restore needs only the latest; time
travel needs one not too far before any moment, so that it replays a bounded
number of records. `ThinningPolicy` keeps the `keep_recent` newest checkpoints
and, further back, only as many as keep every stretch of history shorter than
`spacing` records between kept checkpoints (or between the start of the kept
history and the first of them). Pure functions, no I/O: backends delete what
`checkpoints_to_drop` names, in the same step that packs or retains history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["CheckpointMark", "ThinningPolicy", "checkpoints_to_drop"]


@dataclass(frozen=True, slots=True)
class CheckpointMark:
    """Where one trusted checkpoint is.

    Attributes:
        seq: The checkpoint record's own seq.
        covers: The highest seq it covers.
    """

    seq: int
    covers: int


@dataclass(frozen=True)
class ThinningPolicy:
    """How many old checkpoints are kept.

    Attributes:
        keep_recent: The newest checkpoints always kept (at least 1: the one a restore
            uses). With 1, a restore whose latest checkpoint is damaged falls back to
            the next kept one, up to `spacing` records older (or replays everything).
        spacing: Further back, the most records of history between two kept
            checkpoints (a bound on what time travel replays after a checkpoint).
    """

    keep_recent: int = 1
    spacing: int = 5000

    def __post_init__(self) -> None:
        if self.keep_recent < 1:
            raise ValueError(
                f"Thinning keeps at least the latest checkpoint, not {self.keep_recent}."
            )
        if self.spacing < 1:
            raise ValueError(f"Thinning spacing must be at least 1 record, not {self.spacing}.")


def checkpoints_to_drop(
    checkpoints: Sequence[CheckpointMark], *, history_start: int, policy: ThinningPolicy
) -> list[int]:
    """The seqs of the checkpoints that `policy` lets go.

    Args:
        checkpoints: The document's trusted checkpoints, in any order (damaged
            ones are not passed: they are never kept for time travel).
        history_start: The seq of the first record of the kept history (a
            replay from there needs no checkpoint).
        policy: How many to keep.

    Returns:
        Seqs of checkpoint records to delete, ascending. The newest
        `keep_recent` are never among them, and with the rest removed no stretch
        of covered history between kept checkpoints exceeds `policy.spacing`
        records unless it already did.
    """
    ordered = sorted(checkpoints, key=lambda mark: (mark.covers, mark.seq))
    recent = ordered[-policy.keep_recent :]
    older = ordered[: -policy.keep_recent]
    if not older:
        return []
    drop: list[int] = []
    last_kept = history_start - 1
    # Greedy: keep a checkpoint only if skipping it would leave a stretch longer than
    # `spacing` up to the next candidate (the next older checkpoint or the first recent one).
    for index, mark in enumerate(older):
        following = older[index + 1] if index + 1 < len(older) else recent[0]
        if following.covers - last_kept > policy.spacing:
            last_kept = mark.covers
        else:
            drop.append(mark.seq)
    return sorted(drop)
