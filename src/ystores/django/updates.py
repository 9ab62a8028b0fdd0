"""Group names for rooms, the store named in Django settings, and `send_doc_update`."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from .. import crdt
from ..base import BaseYStore
from ..errors import StoreStateError, YDocNotFound

__all__ = [
    "DOC_REQUEST",
    "DOC_UPDATE",
    "asend_doc_update",
    "edit_document",
    "group_name",
    "send_doc_update",
    "settings_store",
]

DOC_UPDATE = "doc_update"
"""The channel-layer event type that carries a document update to every consumer of a room."""

DOC_REQUEST = "doc_request"
"""The channel-layer event a consumer without a store sends to get the room's document."""

_GROUP_NAME = re.compile(r"^[a-zA-Z0-9\-_.]{1,90}$")


def group_name(room_name: str) -> str:
    """The channel-layer group of a room.

    The room name itself when Channels accepts it as a group name (ASCII
    letters, digits, `-`, `_` and `.`, as the ancestor's consumer used it);
    otherwise (`notes/today`, non-ASCII, long names) a stable name derived from
    its SHA-256.
    """
    if _GROUP_NAME.match(room_name):
        return room_name
    digest = hashlib.sha256(room_name.encode("utf-8")).hexdigest()[:40]
    return f"ystores.{digest}"


def settings_store(room_name: str, url: str | None = None) -> BaseYStore | None:
    """The store of `room_name` at `url`, or at `settings.YSTORES_URL` when `url` is None.

    Returns:
        None when neither names a store (the documents then live only in the
        connected clients, as with ypy-websocket's consumer).
    """
    if url is None:
        from django.conf import settings

        url = getattr(settings, "YSTORES_URL", None)
    if url is None:
        return None
    from ..urls import open_store

    return open_store(url, room_name)


async def asend_doc_update(room_name: str, update: bytes, *, store_url: str | None = None) -> None:
    """The async form of `send_doc_update`."""
    crdt.validate_update(update)
    store = settings_store(room_name, store_url)
    if store is not None:
        async with store:
            await store.write(update)
    layer: Any = get_channel_layer()
    if layer is None:
        raise StoreStateError("No channel layer is configured (settings.CHANNEL_LAYERS).")
    await layer.group_send(group_name(room_name), {"type": DOC_UPDATE, "update": update})


def send_doc_update(room_name: str, update: bytes, *, store_url: str | None = None) -> None:
    """Apply a server-side update to a room from synchronous code (a view, a signal, a command).

    The update is written to the room's store first (the store at `store_url`,
    or `settings.YSTORES_URL`; none when neither is set), then sent through the
    channel layer to every `YjsConsumer` of the room, in every process behind
    that layer, which applies it and forwards it to its client. Clients that
    connect later load it from the store. Call `asend_doc_update` from async code.

    Args:
        room_name: The room (document) name, as `YjsConsumer.make_room_name` gives it.
        update: A Yjs v1 update (for instance `pycrdt.Doc.get_update()` of a
            document holding the change).
        store_url: The room's store, when it is not `settings.YSTORES_URL`.

    Raises:
        InvalidUpdateError: `update` is not a Yjs v1 update; nothing was written or sent.
        StoreStateError: No channel layer is configured.
    """
    async_to_sync(asend_doc_update)(room_name, update, store_url=store_url)


@contextmanager
def edit_document(room_name: str, *, store_url: str | None = None) -> Iterator[Any]:
    """Edit a room's document from synchronous code: `with edit_document(name) as doc:`.

    The document is loaded from the room's store (`store_url` or
    `settings.YSTORES_URL`); when the block ends, the changes made to it are
    sent with `send_doc_update` (stored, then applied by every consumer of the
    room and forwarded to its client). Nothing is sent if the block raises or
    changes nothing. Consumers store every change before sending it, so the
    loaded document holds every change a client has had acknowledged.

    Raises:
        StoreStateError: No store is configured (there is nothing to load), or
            no channel layer is.
    """
    store = settings_store(room_name, store_url)
    if store is None:
        raise StoreStateError(
            "edit_document needs a store: set settings.YSTORES_URL or pass store_url."
        )
    doc = crdt.new_doc("pycrdt")
    async_to_sync(_load)(store, doc)
    before = crdt.encode_state_vector(doc)
    yield doc
    update = crdt.encode_diff(doc, before)
    if update != crdt.EMPTY_UPDATE:
        send_doc_update(room_name, update, store_url=store_url)


async def _load(store: BaseYStore, doc: Any) -> None:
    try:
        await store.apply_updates(doc)
    except YDocNotFound:
        pass
    finally:
        await store.aclose()
