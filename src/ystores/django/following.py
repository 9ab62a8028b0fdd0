"""One follower per followed document per process, shared by the consumers of its room.

The Django consumer keeps its document in step with its store the way a room
does (`ystores.room.following.StoreFollower`): whatever another writer appends
to the document's log (a consumer in another Django process, `ystore serve`,
`ystore import`, `send_doc_update` from any process) is applied to the
consumer's document and sent to its client. The consumers of one document in
one process share one follower (one store, one notification path); it hands
every record to each of them, in seq order.

A consumer joins before it loads its document, and the follower knows the seq
it follows from before that load, so no record falls between the load and the
follow; records delivered twice (loaded, then followed) change nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from logging import Logger
from typing import Any, Protocol

import anyio

from ..base import BaseYStore
from ..records import Record
from ..room.following import StoreFollower

__all__ = ["FOLLOW_READY_TIMEOUT", "FollowMember", "SharedFollower", "follow_key", "join", "leave"]

FOLLOW_READY_TIMEOUT = 30.0
"""Seconds a joining consumer waits for its follower to learn where to follow from."""


class FollowMember(Protocol):
    """A consumer taking the records its shared follower delivers."""

    async def take_followed(self, records: list[Record]) -> None:
        """Apply `records` (in seq order) and send the client what they changed."""


class SharedFollower(StoreFollower):
    """Follows one document for every consumer of it in this process.

    Attributes:
        members: The consumers served.
        key: Its key in the process's followers (see `follow_key`).
    """

    def __init__(self, store: BaseYStore, log: Logger, key: tuple[Any, ...]) -> None:
        super().__init__(store, log)
        self.key = key
        self.members: set[FollowMember] = set()

    async def follow(self) -> None:
        """Follow from the store's last seq until stopped, then close the store."""
        try:
            await self.run(None)
        finally:
            with anyio.CancelScope(shield=True):
                await self.store.aclose()

    async def _deliver(self, records: list[Record]) -> None:
        for member in list(self.members):
            await member.take_followed(records)


_followers: dict[tuple[Any, ...], SharedFollower] = {}
_tasks: set[asyncio.Task[None]] = set()


def follow_key(store: BaseYStore) -> tuple[str, str, str]:
    """What names a followed document: the store's class, its database or file, the document."""
    location = getattr(store, "database_url", None) or getattr(store, "file_path", None)
    return type(store).__qualname__, str(location), store.path


async def join(
    member: FollowMember,
    store: BaseYStore,
    make_store: Callable[[], BaseYStore | None],
    log: Logger,
    wait_at_most: float = FOLLOW_READY_TIMEOUT,
) -> SharedFollower | None:
    """Add `member` to the follower of `store`'s document, starting one if none runs.

    `make_store` gives the follower its own store the first time. Returns once
    the follower knows the seq it follows from, so the member may load its
    document now.

    Returns:
        The follower (None when the store keeps no seqs: nothing is followed).

    Raises:
        TimeoutError: The store did not answer within `wait_at_most` seconds.
    """
    loop = asyncio.get_running_loop()
    key = (id(loop), *follow_key(store))
    follower = _followers.get(key)
    if follower is None:
        own = make_store()
        if own is None:
            return None
        follower = _followers[key] = SharedFollower(own, log, key)
        task = loop.create_task(follower.follow())
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
    follower.members.add(member)
    with anyio.move_on_after(wait_at_most):
        await follower.ready.wait()
    if not follower.ready.is_set():
        leave(member, follower)
        raise TimeoutError(f"The store of {store.path} did not answer within {wait_at_most:g} s.")
    if not follower.followable:
        leave(member, follower)
        return None
    return follower


def leave(member: FollowMember, follower: SharedFollower) -> None:
    """Remove `member`; the last one to leave stops the follower."""
    follower.members.discard(member)
    if not follower.members:
        if _followers.get(follower.key) is follower:
            del _followers[follower.key]
        follower.stop()
