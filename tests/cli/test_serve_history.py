"""`ystore serve` history options: parsed into the stores' policies, bad values one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ystores.history import CheckpointPolicy, RetentionPolicy
from ystores.history.parsing import parse_retention, parse_size, parse_time
from ystores.room.asgi import YStoreApp
from ystores.room.serving import ServerOptions

from .helpers import ystore


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--retain", "forever"], "--retain"),
        (["--retain", "30d", "--compaction"], "--compaction"),
        (["--checkpoint-every", "10", "--compact-idle", "5"], "--compaction"),
        (["--retain", "none", "--checkpoint-every", "10"], "--checkpoint-every"),
        (["--checkpoint-every", "0"], "--checkpoint-every"),
    ],
)
def test_bad_history_options_are_one_line_usage_errors(
    args: list[str], option: str, tmp_path: Path
) -> None:
    result = ystore("serve", "--store", f"sqlite:///{tmp_path / 'x.db'}", *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert option in result.stderr, result.stderr
    assert not (tmp_path / "x.db").exists()  # refused before the store is opened


def test_server_options_reach_every_document_store(tmp_path: Path) -> None:
    options = ServerOptions(
        store=f"sqlite:///{tmp_path / 'x.db'}",
        compaction=None,
        checkpoints=CheckpointPolicy(every_updates=50),
        retention=RetentionPolicy(window=3600),
        compress=True,
    )
    store = options.store_factory()("notes/a")
    assert store.checkpoints == CheckpointPolicy(every_updates=50)
    assert store.retention == RetentionPolicy(window=3600)
    assert store.compress is True
    assert store.compaction is None


def test_the_asgi_app_opens_stores_with_the_options_given(tmp_path: Path) -> None:
    app = YStoreApp(
        f"sqlite:///{tmp_path / 'x.db'}",
        store_options={"retention": RetentionPolicy.all(), "compress": True},
    )
    store = app.manager.store_factory("notes/a")
    assert store is not None
    assert store.retention == RetentionPolicy.all()
    assert store.compress is True
    with pytest.raises(TypeError, match="store URL"):
        YStoreApp(lambda name: store, store_options={"compress": True})


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("all", RetentionPolicy.all()),
        ("none", RetentionPolicy.none()),
        ("30d", RetentionPolicy(window=30 * 86400)),
        ("12h", RetentionPolicy(window=12 * 3600)),
        ("64MiB", RetentionPolicy(budget=64 << 20)),
        ("1GB", RetentionPolicy(budget=10**9)),
    ],
)
def test_retention_spellings(text: str, policy: RetentionPolicy) -> None:
    assert parse_retention(text) == policy


def test_times_sizes_and_their_errors() -> None:
    now = 1_767_000_000.0
    assert parse_time("2025-12-29T09:20:00Z", now=now) == now
    assert parse_time("2025-12-29 09:20", now=now) == now  # UTC without a zone
    assert parse_time("2025-12-29T10:20:00+01:00", now=now) == now
    assert parse_time(str(now), now=0) == now
    assert parse_time("2h", now=now) == now - 7200
    assert parse_time("90s", now=now) == now - 90
    assert parse_size("500KB") == 500_000
    assert parse_size("2KiB") == 2048
    with pytest.raises(ValueError, match="yesterday"):
        parse_time("yesterday", now=now)
    with pytest.raises(ValueError, match="'12' is not a size"):
        parse_size("12")
    with pytest.raises(ValueError, match="10 parsecs"):
        parse_retention("10 parsecs")
