"""`YjsConsumer`: ypy-websocket's Django Channels consumer, persisting through any ystores store."""

from __future__ import annotations

from logging import getLogger
from typing import Any, ClassVar, TypedDict

from channels.generic.websocket import AsyncWebsocketConsumer

from .. import crdt
from ..base import BaseYStore
from ..errors import InvalidUpdateError, YDocNotFound
from ..room.awareness import Awareness
from ..room.channel import CloseCode, short_reason
from ..room.document import RoomDocument
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
        self._from_client = False

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
        refusal = await self._load()
        await self.accept()
        if refusal is not None:
            await self.close(code=CloseCode.UNAVAILABLE, reason=short_reason(refusal))
            return
        await self.send(bytes_data=encode_sync_step1(self._document.state_vector()))
        if self.ystore is None:
            # No store to load from: the room's other consumers send what they hold.
            await self.channel_layer.group_send(
                self.group_name, {"type": DOC_REQUEST, "reply_to": self.channel_name}
            )

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

    async def _refuse(self, code: int, reason: str) -> None:
        log.warning("Closing a client of %s (%d): %s", self.room_name, code, reason)
        await self.close(code=code, reason=short_reason(reason))

    # -- channel-layer handlers and helpers ----------------------------------------

    async def doc_update(self, event: dict[str, Any]) -> None:
        """Apply an update sent to the room (by `send_doc_update` or another consumer)."""
        if self._document is None:
            return
        update = bytes(event["update"])
        try:
            self._document.apply(update)
        except InvalidUpdateError as exc:  # refused here; the client is not sent it either
            log.error("An update sent to room %s was refused: %s", self.room_name, exc)
            return
        if event.get("sender") != self.channel_name:
            await self.send(bytes_data=encode_update(update))

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
