"""The HTML of the pages `ystore serve` shows to a browser: the room picker and the editor.

Every value that comes from a request (the room name, the token) is escaped for
the place it lands in: HTML text, an attribute, or the JSON island the editor's
script reads. The pages load only the assets ystores itself serves (no CDN).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from html import escape
from urllib.parse import quote, urlencode

__all__ = ["ASSET_PREFIX", "editor_page", "index_page", "room_href"]

ASSET_PREFIX = "/.ystores"
"""HTTP paths under this prefix are ystores' own (assets, status); no page names a room there."""


def room_href(base: str, room: str, token: str | None) -> str:
    """The URL path of a room's page (each path segment percent-encoded)."""
    query = f"?{urlencode({'token': token})}" if token else ""
    return f"{base}/{quote(room, safe='/')}{query}"


def _json_island(value: object) -> str:
    # `<`, `>` and `&` escaped: no `</script>` or comment can close the island early.
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _head(title: str, base: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n"
        f'<link rel="stylesheet" href="{escape(base)}{ASSET_PREFIX}/page.css">\n</head>\n'
    )


def editor_page(room: str, *, base: str = "", token: str | None = None) -> str:
    """The collaborative editor of document `room`.

    Args:
        room: The document's name (validated by the caller).
        base: The application's mount point (the ASGI `root_path`), without a trailing `/`.
        token: The access token the page passes on to its websocket, when the server needs one.
    """
    config = _json_island({"room": room, "base": base, "token": token})
    home = escape(base + "/" + (f"?{urlencode({'token': token})}" if token else ""))
    return (
        _head(f"{room} · ystores", base)
        + "<body>\n<header>\n"
        + f'<h1><a href="{home}">ystores</a> / <span id="room">{escape(room)}</span></h1>\n'
        + '<span id="status" data-state="connecting" role="status">Connecting…</span>\n'
        + '<div class="people"><label>Your name <input id="name" type="text" maxlength="40">'
        + '</label><span class="muted">here (<span id="count">0</span>):</span>'
        + '<ul id="people" aria-label="Who is here"></ul></div>\n'
        + '</header>\n<main>\n<div id="editor-host"></div>\n</main>\n'
        + f'<script id="ystores-config" type="application/json">{config}</script>\n'
        + f'<script src="{escape(base)}{ASSET_PREFIX}/editor.js"></script>\n'
        + "</body>\n</html>\n"
    )


def index_page(
    open_rooms: Iterable[str],
    *,
    base: str = "",
    token: str | None = None,
    error: str | None = None,
) -> str:
    """The page that picks or creates a room.

    Args:
        open_rooms: The rooms that have clients now (linked).
        base: The application's mount point, without a trailing `/`.
        token: The access token, carried into the links and the form.
        error: A message to show above the form (such as a refused name).
    """
    rooms = sorted(open_rooms)
    items = "".join(
        f'<li><a href="{escape(room_href(base, room, token))}">{escape(room)}</a></li>\n'
        for room in rooms
    )
    listing = (
        f'<h2>Open now</h2>\n<ul id="rooms">\n{items}</ul>\n'
        if rooms
        else '<p class="muted" id="rooms">No room is open right now.</p>\n'
    )
    hidden = f'<input type="hidden" name="token" value="{escape(token)}">' if token else ""
    shown_error = f'<p class="error" role="alert">{escape(error)}</p>\n' if error else ""
    return (
        _head("ystores", base)
        + '<body>\n<main class="picker">\n<h1>ystores</h1>\n'
        + "<p>Open a document to edit it with everyone else who opens it. A new name "
        + "makes a new document; names may contain <code>/</code> (such as "
        + "<code>notes/today</code>).</p>\n"
        + shown_error
        + f'<form method="get" action="{escape(base)}{ASSET_PREFIX}/open">'
        + '<input type="text" name="room" placeholder="Document name" required autofocus '
        + 'aria-label="Document name">'
        + f'{hidden}<button type="submit">Open</button></form>\n'
        + listing
        + '<p class="muted">Yjs clients connect to the same address: '
        + "<code>ws://HOST:PORT/NAME</code>.</p>\n</main>\n</body>\n</html>\n"
    )
