"""Serving documents live: `YRoom`, `RoomManager` and the ASGI application `YStoreApp`.

Rooms speak the Yjs sync and awareness protocols (y-protocols) with any
websocket client, such as y-websocket's `WebsocketProvider`, and persist every
change in a store.
"""

from __future__ import annotations

from .asgi import AccessDenied, ASGIChannel, Authenticate, YStoreApp
from .awareness import Awareness
from .channel import Channel, CloseCode
from .manager import RoomAccess, RoomFactory, RoomHook, RoomManager, StoreFactory
from .protocol import ProtocolError
from .room import MessageTooLargeError, OnMessage, YRoom

__all__ = [
    "ASGIChannel",
    "AccessDenied",
    "Authenticate",
    "Awareness",
    "Channel",
    "CloseCode",
    "MessageTooLargeError",
    "OnMessage",
    "ProtocolError",
    "RoomAccess",
    "RoomFactory",
    "RoomHook",
    "RoomManager",
    "StoreFactory",
    "YRoom",
    "YStoreApp",
]
