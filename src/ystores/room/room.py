"""`YRoom`: one document shared by its clients, synced over y-protocols and persisted in a store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from inspect import isawaitable
from logging import Logger, getLogger
from typing import Any

import anyio
import pycrdt
from anyio.abc import TaskStatus

from .. import crdt
from ..base import BaseYStore
from ..errors import InvalidUpdateError, MessageTooLargeError, YDocNotFound
from ..lifecycle import Lifecycle, Stopping
from .awareness import DEFAULT_MAX_CLIENTS, DEFAULT_MAX_STATE_SIZE, Awareness
from .changes import ChangeFeed
from .channel import Channel, CloseCode, close_quietly, short_reason
from .client import RoomClient
from .document import RoomDocument
from .following import RoomFollower
from .protocol import (
    MessageType,
    ProtocolError,
    SyncType,
    decode_message,
    encode_awareness,
    encode_sync_step1,
    encode_sync_step2,
)

__all__ = ["MessageTooLargeError", "OnMessage", "YRoom"]

OnMessage = Callable[[bytes], Awaitable[bool] | bool]
"""Sees each raw message from a client first; returning True skips the message."""

DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024


class YRoom(Lifecycle):
    """A document shared by websocket clients and persisted in a store.

    On start the room loads its document from the store (no record yet means an
    empty document) before any client syncs. If loading fails, the room refuses
    every client with close code 4500 and never writes to the store, so a damaged
    store is never overwritten by an empty document.

    Every change, from a client or made on `ydoc` by the server, is broadcast to
    the other clients and written to the store. Writes go through a bounded
    buffer: a client's next message is read only once its change is queued, so a
    slow store slows the clients down instead of growing a queue; stopping the
    room writes everything queued before returning. Consecutive queued changes
    are merged into one write.

    When a write to the store fails (disk full, database gone), the room logs
    it, closes its clients with 4500 ("The document could not be saved.") and
    refuses new ones; it keeps trying, backing off from `store_retry_delay` to
    30 s, to store the document's whole state, and serves again once that
    works. A change is never acknowledged as stored when it is not: it is
    stored by that write, or its client was closed and resends it on reconnect.

    A client that sends a malformed message, an unknown message type, an update
    that does not decode or a message over `max_message_size` is closed (1002,
    1007 or 1009) with the reason logged; the room, the other clients and the
    store carry on. Awareness is relayed to every client, and a client's states
    are cleared, with a removal broadcast, when its connection ends; the room
    then forgets them, so its awareness memory holds only present clients. A
    connection may bring at most `max_awareness_clients` client ids, each state
    at most `max_awareness_state` bytes.

    Use it as `async with room:` or with `await task_group.start(room.start)` and
    `room.stop()`.

    Attributes:
        ystore: Where the document is persisted (None: memory only).
        awareness: The clients' awareness states.
        clients: The connected channels.
        log: Where lifecycle and client errors are logged.
        max_message_size: The largest message a client may send, in bytes.
        load_error: Why the document could not be loaded, when it could not.
        store_retry_delay: Seconds before the first retry once the store fails.
    """

    def __init__(
        self,
        ready: bool = True,
        ystore: BaseYStore | None = None,
        log: Logger | None = None,
        *,
        ydoc: pycrdt.Doc[Any] | Any = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        write_buffer: int = 64,
        client_buffer: int = 1024,
        store_retry_delay: float = 0.5,
        max_awareness_clients: int = DEFAULT_MAX_CLIENTS,
        max_awareness_state: int = DEFAULT_MAX_STATE_SIZE,
        follow: bool = True,
    ) -> None:
        """Make a room; it serves clients once started.

        Args:
            ready: False holds clients before they sync until `ready` is set to
                True (to prepare the document first).
            ystore: Where to persist the document; the room starts and stops it
                unless it is already running.
            log: Where to log; the `ystores.room` logger by default.
            ydoc: The document to serve, a `pycrdt.Doc` or a `y_py.YDoc` (as in
                ypy-websocket); a new pycrdt document by default.
            max_message_size: Larger client messages close that client (1009).
            write_buffer: How many changes may wait for the store before clients
                are slowed down.
            client_buffer: How many messages may wait for a client before it is
                closed as too slow (4529).
            store_retry_delay: Seconds before the first retry once the store fails
                (doubling up to 30 s between tries).
            max_awareness_clients: How many awareness client ids one connection
                may bring; more closes it (1002).
            max_awareness_state: The largest awareness state, in bytes of JSON; a
                larger one closes its connection (1009).
            follow: Apply and broadcast the records other writers (other servers,
                `ystore import`, application code) append to the store while the
                room runs (see `ystores.room.following`).
        """
        self._document = RoomDocument(ydoc)
        self.ystore = ystore
        self.log = log or getLogger("ystores.room")
        self.awareness = Awareness(
            max_clients=max_awareness_clients, max_state_size=max_awareness_state
        )
        self.clients: list[Channel] = []
        self.max_message_size = max_message_size
        self.load_error: BaseException | None = None
        self._on_message: OnMessage | None = None
        self._members: list[RoomClient] = []
        self._write_buffer = write_buffer
        self.store_retry_delay = store_retry_delay
        self._client_buffer = client_buffer
        self._ready = anyio.Event()
        if ready:
            self._ready.set()
        self._feed: ChangeFeed | None = None
        self._stopping = False
        self._follow = follow
        self._loaded_seq: int | None = None
        self.follower: RoomFollower | None = None
        """Applies what other writers store, while the room runs and follows its store."""

    # -- attributes kept from ypy-websocket -----------------------------------

    @property
    def ydoc(self) -> Any:
        """The shared document (a `pycrdt.Doc`, or the `y_py.YDoc` the room was given).

        Server-side edits are broadcast and stored like a client's.
        """
        return self._document.ydoc

    @property
    def ready(self) -> bool:
        """Whether clients may sync: set to False before start to prepare the document."""
        return self._ready.is_set()

    @ready.setter
    def ready(self, value: bool) -> None:
        if value:
            self._ready.set()
        elif self._ready.is_set():
            self._ready = anyio.Event()

    @property
    def write_error(self) -> BaseException | None:
        """Why the last write to the store failed, when one did (the room then refuses clients)."""
        return self._feed.write_error if self._feed is not None else None

    @property
    def unsaved(self) -> int:
        """How many changes the room holds that are not in its store yet."""
        return self._feed.unsaved if self._feed is not None else 0

    @property
    def on_message(self) -> OnMessage | None:
        """Called with each raw client message first; returning True skips the message."""
        return self._on_message

    @on_message.setter
    def on_message(self, value: OnMessage | None) -> None:
        self._on_message = value

    # -- lifecycle --------------------------------------------------------------

    async def start(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Load the document, then serve until `stop()`; return once every change is stored.

        Args:
            task_status: Signalled once the room serves clients (for `TaskGroup.start`).

        Raises:
            StoreStateError: The room is already running.
        """
        stop_requested = self._begin()
        self._stopping = False
        try:
            async with anyio.create_task_group() as tg:
                own_store = self.ystore is not None and not self.ystore.running
                if own_store and self.ystore is not None:
                    await tg.start(self.ystore.start)
                # Content the document had before loading is not in the store yet.
                given = crdt.encode_state_as_update(self.ydoc)
                await self._load()
                self._feed = feed = ChangeFeed(
                    self._members,
                    self.log,
                    self._write_buffer,
                    state=self._document.whole_state,
                    retry_delay=self.store_retry_delay,
                )
                await tg.start(feed.run, self.ystore if self.load_error is None else None)
                self._document.observe(feed.record)
                if given != crdt.EMPTY_UPDATE:
                    feed.record(given)
                if self.ystore is not None and self._loaded_seq is not None:
                    self.follower = RoomFollower(self.ystore, self._document, feed, self.log)
                    await tg.start(self.follower.run, self._loaded_seq)
                self.started.set()
                task_status.started()
                await stop_requested.wait()
                if self.follower is not None:
                    self.follower.stop()
                await self._shut_down(feed)
                if own_store and self.ystore is not None:
                    self.ystore.stop()
        finally:
            self._document.unobserve()
            self._finish()

    def stop(self) -> Stopping:
        """Ask a running room to stop; `start()` returns once pending writes are stored.

        Raises:
            StoreStateError: The room is not running.
        """
        return super().stop()

    async def _load(self) -> None:
        self.load_error = None
        self._loaded_seq = None
        if self.ystore is None:
            return
        try:
            if self._follow:  # read first: what lands meanwhile is applied twice, harmlessly
                self._loaded_seq = await self._last_seq(self.ystore)
            await self.ystore.apply_updates(self.ydoc)
        except YDocNotFound:
            self.log.info("Room %s starts a new document.", self.ystore.path)
        except Exception as exc:  # whatever the cause, an unloaded room must not write
            self.load_error = exc
            self._loaded_seq = None
            self.log.error(
                "The document %s could not be loaded; its room refuses clients: %s",
                self.ystore.path,
                exc,
            )

    @staticmethod
    async def _last_seq(store: BaseYStore) -> int | None:
        try:
            return await store.last_seq()
        except NotImplementedError:  # a store without seqs: the room does not follow it
            return None

    async def _shut_down(self, feed: ChangeFeed) -> None:
        self._stopping = True
        for member in list(self._members):
            member.disconnect(CloseCode.GOING_AWAY, "The room is closing.")
        await feed.dispatch()
        feed.close()
        await feed.done.wait()

    # -- clients ---------------------------------------------------------------

    def _refusal(self) -> str | None:
        if self.load_error is not None:
            return f"The document could not be loaded: {self.load_error}"
        if self.write_error is not None:
            return f"The document could not be saved: {self.write_error}"
        if self._stopping or self._stop_requested is None:
            return "The room is closed."
        return None

    async def serve(self, channel: Channel) -> None:
        """Serve one client until it disconnects, sends bad input or the room stops.

        Waits until the room has started and is ready. The channel is closed on return.

        Args:
            channel: The client's connection.
        """
        if self._stopped is not None and self._stopped.is_set():
            await close_quietly(channel, CloseCode.UNAVAILABLE, "The room is closed.")
            return
        await self.started.wait()
        await self._ready.wait()
        refusal = self._refusal()
        if refusal is not None:
            self.log.warning("Refusing client %s: %s", channel.path, refusal)
            await close_quietly(channel, CloseCode.UNAVAILABLE, refusal)
            return
        member = RoomClient(channel, self._client_buffer, self.log)
        async with anyio.create_task_group() as tg:
            member.cancel_scope = tg.cancel_scope
            tg.start_soon(member.run_sender)
            self._members.append(member)
            self.clients.append(channel)
            try:
                await self._converse(member)
            finally:
                self._leave(member)
                tg.cancel_scope.cancel()
        member.release()
        await close_quietly(channel, member.close_code, member.close_reason)

    async def _converse(self, member: RoomClient) -> None:
        member.queue(encode_sync_step1(self._document.state_vector()))
        present = self.awareness.encode_present()
        if present is not None:
            member.queue(encode_awareness(present))
        try:
            async for message in member.channel:
                await self._receive(member, message)
        except MessageTooLargeError as exc:
            self._reject(member, CloseCode.MESSAGE_TOO_BIG, exc)
        except ProtocolError as exc:
            self._reject(member, CloseCode.PROTOCOL_ERROR, exc)
        except InvalidUpdateError as exc:
            self._reject(member, CloseCode.INVALID_PAYLOAD, exc)
        except Exception as exc:  # the transport failed: the client is gone
            self.log.info("Client %s left: %r", member.channel.path, exc)

    def _reject(self, member: RoomClient, code: int, exc: Exception) -> None:
        self.log.warning("Closing client %s (%d): %s", member.channel.path, code, exc)
        member.close_code, member.close_reason = code, short_reason(str(exc))

    def _leave(self, member: RoomClient) -> None:
        self._members.remove(member)
        self.clients.remove(member.channel)
        member.close_outbox()
        removal = self.awareness.remove(member.awareness_ids)
        if removal is not None:
            message = encode_awareness(removal)
            for other in list(self._members):
                other.queue(message)

    async def _receive(self, member: RoomClient, message: bytes) -> None:
        if len(message) > self.max_message_size:
            raise MessageTooLargeError(
                f"A message of {len(message)} bytes is over the limit of {self.max_message_size}."
            )
        if self._on_message is not None:
            skip = self._on_message(message)
            if isawaitable(skip):
                skip = await skip
            if skip:
                return
        decoded = decode_message(message)
        if decoded.type is MessageType.SYNC:
            if decoded.sync_type is SyncType.STEP1:
                member.queue(encode_sync_step2(self._document.diff(decoded.payload)))
            elif not self._stopping:  # once stopping, the client keeps its change to resend
                self._apply(member, decoded.payload)
                assert self._feed is not None
                await self._feed.dispatch()
        elif decoded.type is MessageType.AWARENESS:
            # Clients relay each other's states too (y-websocket does): a client id
            # belongs to the connection that brought it first, as in y-websocket's server.
            self.awareness.apply(decoded.payload, member.awareness_ids)
            # Back to the sender too: y-websocket clients count it as a keep-alive.
            for other in list(self._members):
                other.queue(message)
        elif decoded.type is MessageType.QUERY_AWARENESS:
            present = self.awareness.encode_present()
            if present is not None:
                member.queue(encode_awareness(present))
        else:
            raise ProtocolError(f"Clients may not send {decoded.type.name} messages.")

    def _apply(self, member: RoomClient, update: bytes) -> None:
        feed = self._feed
        assert feed is not None  # clients are only served while the room runs
        with feed.applying(member):
            self._document.apply(update)
