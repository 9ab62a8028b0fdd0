"""Thinning old checkpoints: the newest kept, no stretch of history left too long."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ystores.history.thinning import CheckpointMark, ThinningPolicy, checkpoints_to_drop


def _marks(covers: list[int]) -> list[CheckpointMark]:
    return [CheckpointMark(seq=c + 1, covers=c) for c in covers]


def test_a_checkpoint_every_thousand_records_keeps_one_in_five_further_back() -> None:
    marks = _marks(list(range(1000, 50_001, 1000)))
    drop = set(checkpoints_to_drop(marks, history_start=1, policy=ThinningPolicy()))
    kept = sorted(mark.covers for mark in marks if mark.seq not in drop)
    # the default keeps the latest only: a damaged one falls back 5,000 records
    assert kept[-2:] == [45_000, 50_000]
    assert len(kept) == 10
    gaps = [b - a for a, b in zip([0, *kept], kept, strict=False)]
    assert max(gaps) <= 5000


@given(
    st.lists(st.integers(min_value=1, max_value=100_000), unique=True, max_size=80),
    st.integers(min_value=1, max_value=5),
    st.integers(min_value=1, max_value=20_000),
)
def test_thinning_keeps_the_newest_and_never_opens_a_gap_wider_than_spacing(
    covers: list[int], keep_recent: int, spacing: int
) -> None:
    marks = _marks(covers)
    policy = ThinningPolicy(keep_recent=keep_recent, spacing=spacing)
    drop = set(checkpoints_to_drop(marks, history_start=1, policy=policy))
    ordered = sorted(mark.covers for mark in marks)
    kept = [c for c in ordered if c + 1 not in drop]
    newest = min(keep_recent, len(ordered))
    assert kept[len(kept) - newest :] == ordered[len(ordered) - newest :]
    for before, after in zip([0, *kept], kept, strict=False):
        # A gap wider than `spacing` is allowed only where no dropped checkpoint lay inside it.
        if after - before > spacing:
            assert not [c for c in ordered if before < c < after]


def test_a_policy_keeps_at_least_the_latest() -> None:
    with pytest.raises(ValueError, match="latest"):
        ThinningPolicy(keep_recent=0)
    with pytest.raises(ValueError, match="spacing"):
        ThinningPolicy(spacing=0)
