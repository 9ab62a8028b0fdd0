"""`YjsConsumer` following its store: one follower per document per process, no echoes."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Any

import pycrdt
import pytest
from django.test import override_settings

from ystores import SQLiteYStore, YDocNotFound
from ystores.django import following
from ystores.room.protocol import SyncType

from .peer import Peer
from .test_consumer import joined

pytestmark = pytest.mark.anyio


def followers_of(doc: str) -> list[following.SharedFollower]:
    return [f for f in following._followers.values() if f.key[-1] == doc]


async def write_text(db: Path, doc: str, text: str, at: int) -> None:
    """Another writer (not a consumer) appends `text` at index `at` of the stored document."""
    ydoc: pycrdt.Doc[Any] = pycrdt.Doc()
    async with SQLiteYStore(doc, db_path=str(db)) as store:
        with suppress(YDocNotFound):
            await store.apply_updates(ydoc)
        before = ydoc.get_state()
        ydoc.get("text", type=pycrdt.Text).insert(at, text)
        await store.write(ydoc.get_update(before))


async def updates_until(peer: Peer, expected: str) -> int:
    """How many update messages `peer` receives until its text is `expected`."""
    count = 0
    while str(peer.text) != expected:
        decoded = await peer.receive()
        if decoded is None:
            raise AssertionError(f"Closed ({peer.closed}) with text {str(peer.text)!r}.")
        if decoded.sync_type is SyncType.UPDATE:
            count += 1
    return count


async def test_consumers_share_one_follower_and_get_other_writers_changes_once(
    tmp_path: Path,
) -> None:
    db = tmp_path / "y.db"
    with override_settings(YSTORES_URL=f"sqlite:///{db}"):
        ana = await joined("/ws/shared")
        bob = await joined("/ws/shared")
        assert len(followers_of("shared")) == 1
        assert len(followers_of("shared")[0].members) == 2
        # Written by another writer (another process, `ystore import`): reaches both, once.
        await write_text(db, "shared", "outside;", 0)
        assert await updates_until(ana, "outside;") == 1
        assert await updates_until(bob, "outside;") == 1
        # Ana's own change reaches bob (through the channel layer and the follower:
        # once), and is not echoed to ana. A later outside write is followed after
        # it (seq order), so every message either could get has arrived by then.
        await ana.type("ana;")
        seen = await updates_until(bob, "outside;ana;")  # stored before it was sent on
        await write_text(db, "shared", "more;", len("outside;ana;"))
        assert seen + await updates_until(bob, "outside;ana;more;") == 2
        assert await updates_until(ana, "outside;ana;more;") == 1
        # A record holding only what the documents have (a snapshot, say) sends nothing.
        async with SQLiteYStore("shared", db_path=str(db)) as store:
            whole: pycrdt.Doc[Any] = pycrdt.Doc()
            await store.apply_updates(whole)
            await store.write(whole.get_update())
        await write_text(db, "shared", "last;", 0)
        assert await updates_until(ana, "last;outside;ana;more;") == 1
        assert await updates_until(bob, "last;outside;ana;more;") == 1
        await ana.leave()
        assert len(followers_of("shared")[0].members) == 1
        await bob.leave()
        assert followers_of("shared") == []


async def test_a_consumer_without_a_store_follows_nothing() -> None:
    ana = await joined("/ws/memory-only")
    assert followers_of("memory-only") == []
    await ana.leave()
