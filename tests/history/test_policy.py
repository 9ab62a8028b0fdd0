"""The default checkpoint policy: how long a tail a restore may have to replay."""

from __future__ import annotations

import pytest

from ystores.cli.serve_cmd import _history
from ystores.history import CheckpointPolicy, RetentionPolicy


def test_the_default_policy_bounds_the_tail_by_records_and_by_bytes() -> None:
    policy = CheckpointPolicy()
    assert (policy.every_updates, policy.every_bytes) == (250, 1 << 20)
    assert not policy.due(250, 250 * 17)  # a tail of 250 keystrokes: the worst case
    assert policy.due(251, 251 * 17)
    assert not policy.due(10, 1 << 20)
    assert policy.due(10, (1 << 20) + 1)  # a few large updates (outputs, pastes)


def test_a_policy_may_drop_either_bound() -> None:
    assert not CheckpointPolicy(every_updates=None).due(100_000, 1 << 20)
    assert not CheckpointPolicy(every_bytes=None).due(250, 1 << 30)
    assert not CheckpointPolicy(None, None).due(10**9, 1 << 40)
    with pytest.raises(ValueError, match="every_bytes"):
        CheckpointPolicy(every_bytes=0)


def test_serve_keeps_history_with_the_default_policy_unless_told() -> None:
    assert _history("all", None, None, None, None) == (CheckpointPolicy(), RetentionPolicy.all())
    chosen = _history("30d", 40, None, None, None)
    assert chosen is not None
    assert chosen[0] == CheckpointPolicy(every_updates=40)
    assert chosen[0].every_bytes == CheckpointPolicy().every_bytes
