"""The browser side of `ystore serve`: an editor page per room, a room picker, token access.

`YStoreApp` answers plain HTTP with these pages (see `ystores.web.http`); the
editor's script is built from npm packages in the repository's `web/` folder and
shipped here, so serving it needs no Node and no CDN.
"""

from __future__ import annotations

from .auth import request_token, token_auth

__all__ = ["request_token", "token_auth"]
