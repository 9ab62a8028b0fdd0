"""`YjsConsumer`: ypy-websocket's Django Channels consumer, persisting through any ystores store."""

from __future__ import annotations

from logging import getLogger
from typing import Any, ClassVar, TypedDict

from channels.generic.websocket import AsyncWebsocketConsumer

from .. import crdt
from ..base import BaseYStore
from ..errors import InvalidUpdateError, YDocNotFound
from ..records import Record
from ..room.awareness import Awareness
from ..room.channel import CloseCode, short_reason
from ..room.document import RoomDocument
from ..room.following import apply_record
from ..room.protocol import (
    MessageType,
    ProtocolError,
    SyncType,
    decode_message,
    encode_awareness,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
)
from .following import SharedFollower, join, leave
from .updates import DOC_REQUEST, DOC_UPDATE, group_name, settings_store

__all__ = ["YjsConsumer"]

log = getLogger("ystores.django")


class YjsConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """A Django Channels consumer serving one Yjs client of a room.

    Route it like ypy-websocket's: `path("ws/<str:room>", YjsConsumer.as_asgi())`.
    Each consumer holds the room's document for its client: it loads it from the
    room's store (`settings.YSTORES_URL`, or the consumer's `store_url`, or
    `make_ystore`), syncs it with the client, writes each of the client's
    changes to the store and then sends it through the channel layer to every
    other consumer of the room, in every process behind the layer. A consumer
    that joins later loads what was written before it joined and receives what
    is sent after, so nothing falls between the two. Without a store, a joining
    consumer gets the document from the room's other consumers instead.

    With a store, the consumer also follows it as a room does (one follower per
    document per process, shared by its consumers; see
    `ystores.django.following`): what any other writer stores (a Django process
    behind another channel layer, `ystore serve`, `ystore import`) reaches the
    client too. The store carries every update between processes; the channel
    layer carries awareness and brings updates to consumers behind the same
    layer sooner. An update arriving both ways changes the document once, and
    the client is sent only what changed its consumer's document, so once.

    Override points (as in ypy-websocket):

    - `make_room_name`: the room's name (the `room` URL argument by default).
    - `make_ydoc`: the document (a new `pycrdt.Doc`; a `y_py.YDoc` also works);
      add observers or initial content here.
    - `make_ystore`: the store (from `store_url` or `settings.YSTORES_URL`).
    - `connect`: authenticate, then `await super().connect()`; close instead to refuse.
    - `group_send_message`: send a raw message to every client of the room.
    - `send_message`: the handler sending a raw message to this client.
    - `doc_update`: the handler applying an update sent by `send_doc_update`
      or another consumer.

    Attributes:
        store_url: The store URL for this consumer class (None: `settings.YSTORES_URL`).
        room_name: The room's name, once connected.
        ydoc: The document, once connected.
        ystore: The store, once connected (None without one).
    """

    store_url: ClassVar[str | None] = None

    class WrappedMessage(TypedDict):
        """A raw y-protocols message for the client, as sent through the channel layer."""

        message: bytes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.room_name: str | None = None
        self.ydoc: Any = None
        self.ystore: BaseYStore | None = None
        self._document: RoomDocument | None = None
        self._awareness = Awareness()
        self._changes: list[bytes] = []
        self._outgoing: list[bytes] = []
        self._from_client = False
        self._open = False
        self._follower: SharedFollower | None = None

    # -- override points ---------------------------------------------------------

    def make_room_name(self) -> str:
        """The room's name; by default the `room` argument of the URL route."""
        return str(self.scope["url_route"]["kwargs"]["room"])

    async def make_ydoc(self) -> Any:
        """The document for this consumer; a new `pycrdt.Doc` by default (it is loaded after)."""
        return crdt.new_doc("pycrdt")

    def make_ystore(self) -> BaseYStore | None:
        """The room's store: `store_url`, else `settings.YSTORES_URL`, else None (memory only)."""
        assert self.room_name is not None
        return settings_store(self.room_name, self.store_url)

    # -- the connection ------------------------------------------------------------

    @property
    def group_name(self) -> str:
        """The channel-layer group of this consumer's room."""
        assert self.room_name is not None
        return group_name(self.room_name)

    async def connect(self) -> None:
        """Join the room's group, load the document, accept and start the sync."""
        self.room_name = self.make_room_name()
        self.ydoc = await self.make_ydoc()
        self._document = RoomDocument(self.ydoc)
        self._document.observe(self._record)
        self.ystore = self.make_ystore()
        # Join before loading: what is sent after this is received, what was
        # written before it is loaded (consumers write before they send).
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        # Follow before loading too: what is stored after the load is followed.
        refusal = await self._follow()
        if refusal is None:
            refusal = await self._load()
        self._outgoing.clear()  # the client gets what the document holds by syncing
        await self.accept()
        if refusal is not None:
            self._leave_follower()
            await self.close(code=CloseCode.UNAVAILABLE, reason=short_reason(refusal))
            return
        self._open = True
        await self.send(bytes_data=encode_sync_step1(self._document.state_vector()))
        if self.ystore is None:
            # No store to load from: the room's other consumers send what they hold.
            await self.channel_layer.group_send(
                self.group_name, {"type": DOC_REQUEST, "reply_to": self.channel_name}
            )

    async def _follow(self) -> str | None:
        if self.ystore is None:
            return None
        try:
            self._follower = await join(self, self.ystore, self.make_ystore, log)
        except TimeoutError as exc:
            await self._stop_store()
            return f"The document could not be loaded: {exc}"
        return None

    def _leave_follower(self) -> None:
        follower, self._follower = self._follower, None
        if follower is not None:
            leave(self, follower)

    async def take_followed(self, records: list[Record]) -> None:
        """Apply records other writers stored (from the shared follower); send what changed."""
        if self._document is None or self.ystore is None:
            return
        for record in records:
            apply_record(self._document, record, self.ystore, log)
        await self._send_outgoing()

    async def _send_outgoing(self) -> None:
        updates, self._outgoing = self._outgoing, []
        if not updates or not self._open:
            return
        update = updates[0] if len(updates) == 1 else crdt.merge_updates(updates)
        try:
            await self.send(bytes_data=encode_update(update))
        except Exception as exc:  # the client is gone; its disconnect cleans up
            log.info("A client of %s could not be sent an update: %r", self.room_name, exc)

    async def _load(self) -> str | None:
        if self.ystore is None:
            return None
        try:
            await self.ystore.apply_updates(self.ydoc)
        except YDocNotFound:
            return None
        except Exception as exc:  # an unloaded document must not be written to
            log.error("The document %s could not be loaded: %s", self.room_name, exc)
            await self._stop_store()
            return f"The document could not be loaded: {exc}"
        return None

    async def disconnect(self, code: int) -> None:
        """Leave the group, announce the client's awareness removal, close the store."""
        if self.room_name is None:
            return
        self._open = False
        self._leave_follower()
        if self._document is not None:
            self._document.unobserve()
        removal = self._awareness.remove(list(self._awareness.states))
        if removal is not None:
            await self.group_send_message(encode_awareness(removal))
        await self.channel_layer.group_discard(self.group_name, self.channel_name)
        await self._stop_store()

    async def _stop_store(self) -> None:
        store, self.ystore = self.ystore, None
        if store is not None:
            await store.aclose()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Handle one client message; bad input closes this client only."""
        if bytes_data is None:
            await self._refuse(CloseCode.PROTOCOL_ERROR, "y-protocols messages are binary.")
            return
        try:
            await self._handle(bytes_data)
        except ProtocolError as exc:
            await self._refuse(CloseCode.PROTOCOL_ERROR, str(exc))
        except InvalidUpdateError as exc:
            await self._refuse(CloseCode.INVALID_PAYLOAD, str(exc))

    async def _handle(self, message: bytes) -> None:
        assert self._document is not None
        decoded = decode_message(message)
        if decoded.type is MessageType.SYNC:
            if decoded.sync_type is SyncType.STEP1:
                diff = self._document.diff(decoded.payload)
                await self.send(bytes_data=encode_sync_step2(diff))
            else:
                await self._client_update(decoded.payload)
        elif decoded.type is MessageType.AWARENESS:
            self._awareness.apply(decoded.payload)
            # To every client of the room, this one included (a y-websocket keep-alive).
            await self.group_send_message(message)
        elif decoded.type is not MessageType.QUERY_AWARENESS:
            raise ProtocolError(f"Clients may not send {decoded.type.name} messages.")

    async def _client_update(self, update: bytes) -> None:
        assert self._document is not None
        self._from_client = True
        try:
            self._document.apply(update)
        finally:
            self._from_client = False
        if not self._changes:
            return  # nothing new (a client's sync step 2 often holds nothing the room lacks)
        update = self._changes[0] if len(self._changes) == 1 else crdt.merge_updates(self._changes)
        self._changes.clear()
        if self.ystore is not None:
            try:
                await self.ystore.write(update)
            except Exception as exc:  # not stored: not sent on; the client resends it on resync
                log.error("Writing to the document %s failed: %s", self.room_name, exc)
                await self._refuse(CloseCode.UNAVAILABLE, "The document could not be saved.")
                return
        await self.channel_layer.group_send(
            self.group_name, {"type": DOC_UPDATE, "update": update, "sender": self.channel_name}
        )

    def _record(self, update: bytes) -> None:
        if self._from_client:  # what the client's message changed, to store and send on
            self._changes.append(update)
        else:  # what another client or writer changed, to send to this client
            self._outgoing.append(update)

    async def _refuse(self, code: int, reason: str) -> None:
        log.warning("Closing a client of %s (%d): %s", self.room_name, code, reason)
        await self.close(code=code, reason=short_reason(reason))

    # -- channel-layer handlers and helpers ----------------------------------------

    async def doc_update(self, event: dict[str, Any]) -> None:
        """Apply an update sent to the room (by `send_doc_update` or another consumer).

        The client is sent what it changed in the document: nothing when the
        document held it already (its own change, or one the follower applied first).
        """
        if self._document is None:
            return
        update = bytes(event["update"])
        try:
            self._document.apply(update)
        except InvalidUpdateError as exc:  # refused here; the client is not sent it either
            log.error("An update sent to room %s was refused: %s", self.room_name, exc)
            self._outgoing.clear()
            return
        await self._send_outgoing()

    async def doc_request(self, event: dict[str, Any]) -> None:
        """Send this consumer's document to a consumer that joined a room without a store."""
        if self._document is None or event["reply_to"] == self.channel_name:
            return
        update = crdt.encode_state_as_update(self.ydoc)
        if update != crdt.EMPTY_UPDATE:
            await self.channel_layer.send(
                event["reply_to"],
                {"type": DOC_UPDATE, "update": update, "sender": self.channel_name},
            )

    async def send_message(self, message_wrapper: WrappedMessage) -> None:
        """Send a raw message to this consumer's client."""
        await self.send(bytes_data=message_wrapper["message"])

    async def group_send_message(self, message: bytes) -> None:
        """Send a raw message to every client of the room, in every process."""
        await self.channel_layer.group_send(
            self.group_name, {"type": "send_message", "message": message}
        )
