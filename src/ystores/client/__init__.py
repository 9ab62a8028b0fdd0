"""A Python client for y-websocket servers, and `bind` to serve rooms the same way.

`connect(url, doc=...)` keeps a local document in sync with a room on any
server that speaks y-websocket's protocol: ystores' own (`ystore serve`,
`YStoreApp`, the Django consumer), Node's y-websocket server, or
jupyter-collaboration's rooms. `bind(...)` starts ystores' room server on a
socket. Both are async context managers running on asyncio; they need the
`client` extra (`pip install 'ystores[client]'`, for `websockets`).
"""

from __future__ import annotations

from typing import Any

from ..extras import require

require("client", "The Python client")  # a clear error naming the extra, not an ImportError

from .provider import ConnectionRefusedByServer, YClient  # noqa: E402
from .server import Room, Server, bind  # noqa: E402

__all__ = ["ConnectionRefusedByServer", "Room", "Server", "YClient", "bind", "connect"]


def connect(
    url: str,
    *,
    id: str | None = None,
    doc: Any = None,
    host: str = "127.0.0.1",
    port: int = 1234,
    **options: Any,
) -> YClient:
    """A client keeping `doc` in sync with a room: `async with connect(url, doc=doc) as client:`.

    Args:
        url: The room's URL, `ws://host:port/name`; or the server's URL with the
            room name in `id`; or `"websocket"` with `host`, `port` and `id`
            (the wire API's spelling).
        id: The room's name, appended to `url` when given.
        doc: The local document (`pycrdt.Doc` or `y_py.YDoc`); a new
            `pycrdt.Doc` by default.
        host: The server's address for `url="websocket"`.
        port: The server's port for `url="websocket"`.
        **options: Passed to `YClient` (`params`, `headers`, `reconnect`, ...).

    Returns:
        The client, to use as an async context manager.
    """
    if url == "websocket":
        url = f"ws://{host}:{port}"
    if id is not None:
        url = f"{url.rstrip('/')}/{id}"
    return YClient(url, doc, **options)
