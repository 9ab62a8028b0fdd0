"""`token_auth`: a shared-token `authenticate` hook for `YStoreApp` (what `serve --token` uses)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from ..errors import AccessDenied

__all__ = ["request_token", "token_auth"]

Scope = MutableMapping[str, Any]


def request_token(scope: Scope) -> str | None:
    """The token a request carries: `?token=` in its query, or an `Authorization: Bearer` header.

    Browsers cannot set headers on a websocket, so pages pass the query parameter;
    other clients may use either.
    """
    query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
    values = query.get("token")
    if values:
        return values[-1]
    for key, value in scope.get("headers", ()):
        if bytes(key).lower() == b"authorization":
            scheme, _, credentials = bytes(value).decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
    return None


def token_auth(token: str) -> Callable[[Scope], Awaitable[bool]]:
    """An `authenticate` hook admitting requests that carry `token`.

    A request without a token, or with another one, is refused with
    `AccessDenied` (websocket close code 4401, HTTP status 401). Tokens are
    compared in constant time.

    Args:
        token: The shared secret; must not be empty.

    Raises:
        ValueError: `token` is empty.
    """
    if not token:
        raise ValueError("An access token must not be empty.")
    expected = token.encode()

    async def authenticate(scope: Scope) -> bool:
        given = request_token(scope)
        if given is None:
            raise AccessDenied("This server needs an access token (?token=...).")
        if not hmac.compare_digest(given.encode(), expected):
            raise AccessDenied("The access token is wrong.")
        return True

    return authenticate
