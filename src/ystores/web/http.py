"""Plain HTTP for `YStoreApp`: the editor page of each room, the room picker, assets, status.

| GET path | answer |
|---|---|
| `/` | the page that picks or creates a room |
| `/NAME` | the collaborative editor of document NAME (the path its websocket uses) |
| `/.ystores/editor.js`, `/.ystores/page.css` | the page's assets, shipped in the package |
| `/.ystores/open?room=NAME` | a redirect to `/NAME` (the picker's form) |
| `/.ystores/status/NAME` | JSON: whether NAME's room has stored everything it holds |

Pages and the status need what the websocket needs (the `authenticate` hook);
assets are public. A name the store's rule refuses gets 400.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from importlib.resources import files
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from ..errors import AccessDenied, InvalidDocumentNameError
from ..names import validate_name
from .auth import request_token
from .pages import ASSET_PREFIX, editor_page, index_page, room_href

if TYPE_CHECKING:
    from ..room.asgi import Receive, Scope, Send, YStoreApp

__all__ = ["serve_http"]

_ASSETS = {
    "editor.js": "application/javascript; charset=utf-8",
    "page.css": "text/css; charset=utf-8",
}
_HTML = "text/html; charset=utf-8"
_TEXT = "text/plain; charset=utf-8"
_JSON = "application/json"
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


async def serve_http(app: YStoreApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one HTTP request to `app` (GET and HEAD; other methods get 405)."""
    method = str(scope.get("method", "GET")).upper()
    if method not in ("GET", "HEAD"):
        await _respond(
            send,
            405,
            _TEXT,
            b"Only GET and HEAD are served here.\n",
            method,
            extra=[(b"allow", b"GET, HEAD")],
        )
        return
    path = app.room_name(scope)
    base = str(scope.get("root_path", "")).rstrip("/")
    prefix = ASSET_PREFIX[1:] + "/"
    if path.startswith(prefix):
        await _serve_own(app, scope, send, method, path[len(prefix) :], base)
        return
    denied = await _refusal(app, scope)
    if denied is not None:
        await _respond(send, *denied, method)
        return
    token = request_token(scope) if app.authenticate is not None else None
    if path == "":
        page = index_page(app.manager.rooms, base=base, token=token)
        await _respond(send, 200, _HTML, page.encode(), method)
        return
    try:
        validate_name(path)
    except InvalidDocumentNameError as exc:
        page = index_page(app.manager.rooms, base=base, token=token, error=str(exc))
        await _respond(send, 400, _HTML, page.encode(), method)
        return
    await _respond(send, 200, _HTML, editor_page(path, base=base, token=token).encode(), method)


async def _serve_own(
    app: YStoreApp, scope: Scope, send: Send, method: str, rest: str, base: str
) -> None:
    if rest in _ASSETS:
        body = files("ystores.web").joinpath("static").joinpath(rest).read_bytes()
        await _respond(send, 200, _ASSETS[rest], body, method)
        return
    if rest == "open" or rest.startswith("status/"):
        denied = await _refusal(app, scope)
        if denied is not None:
            await _respond(send, *denied, method)
            return
        token = request_token(scope) if app.authenticate is not None else None
        room = _query(scope).get("room", "").strip("/ ") if rest == "open" else rest[7:]
        try:
            validate_name(room)
        except InvalidDocumentNameError as exc:
            if rest != "open":
                await _respond(send, 400, _JSON, _json({"error": str(exc)}), method)
                return
            page = index_page(app.manager.rooms, base=base, token=token, error=str(exc))
            await _respond(send, 400, _HTML, page.encode(), method)
            return
        if rest == "open":
            location = room_href(base, room, token).encode()
            await _respond(send, 303, _TEXT, b"", method, extra=[(b"location", location)])
        else:
            await _respond(send, 200, _JSON, _json(room_status(app.manager.rooms, room)), method)
        return
    await _respond(send, 404, _TEXT, b"Not found.\n", method)


def room_status(rooms: Mapping[str, Any], name: str) -> dict[str, object]:
    """What the editor page shows as "saved": the room's state and its unsaved changes.

    `state_vector` is the base64 Yjs state vector of the room's document (None when
    the room is not open: then everything it held is stored); `unsaved` counts the
    changes applied but not yet written; `error` says why the room cannot save.
    """
    room = rooms.get(name)
    if room is None:
        return {"open": False, "state_vector": None, "unsaved": 0, "error": None}
    problem = room.load_error or room.write_error
    state = base64.b64encode(room.ydoc.get_state()).decode()
    return {
        "open": True,
        "state_vector": state,
        "unsaved": int(room.unsaved),
        "error": str(problem) if problem is not None else None,
    }


async def _refusal(app: YStoreApp, scope: Scope) -> tuple[int, str, bytes] | None:
    if app.authenticate is None:
        return None
    try:
        allowed = await app.authenticate(scope)
    except AccessDenied as exc:
        status = 401 if exc.code == 4401 else 403
        return status, _TEXT, f"{exc.reason}\n".encode()
    if not allowed:
        return 403, _TEXT, b"Forbidden.\n"
    return None


def _query(scope: Scope) -> dict[str, str]:
    parsed = parse_qs(bytes(scope.get("query_string", b"")).decode("utf-8", "replace"))
    return {key: values[-1] for key, values in parsed.items()}


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


async def _respond(
    send: Send,
    status: int,
    content_type: str,
    body: bytes,
    method: str,
    *,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-cache"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        *(extra or []),
    ]
    if content_type == _HTML:
        headers.append((b"content-security-policy", _CSP.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
