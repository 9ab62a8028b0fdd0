"""`open_store(url, doc)`: one way to name a store of any backend."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from .base import BaseYStore
from .errors import InvalidStoreURLError
from .filestore.store import FileYStore

__all__ = ["open_store"]

_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def open_store(url: str, doc: str, **kwargs: Any) -> BaseYStore:
    """A store for document `doc` in the store named by `url`.

    | URL | store |
    |---|---|
    | `file:///data/docs/` | `FileYStore(doc, root="/data/docs/")` |
    | `sqlite:///ystore.db`, `sqlite:////abs/ystore.db`, or a bare `*.db` path | `SQLiteYStore` |
    | `postgresql://user:password@host:5432/dbname` (or `postgres://`) | `PostgresYStore` |

    The SQL stores run on asyncio only. A SQLite URL ending in
    `?synchronous=normal` opens the store with `fsync=False` (its fast setting).

    Args:
        url: Where the documents live.
        doc: The document's name.
        **kwargs: Passed on to the store's constructor.

    Raises:
        InvalidStoreURLError: The URL's scheme is none of these, or its body is malformed.
    """
    if not isinstance(url, str) or not url:
        raise InvalidStoreURLError("A store URL must be a non-empty string.")
    scheme = url.split(":", 1)[0].lower() if "://" in url else ""
    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise InvalidStoreURLError(
                f"The file URL {url!r} names the host {parts.netloc!r}; write file:///path/to/dir/."
            )
        root = unquote(parts.path)
        if not root:
            raise InvalidStoreURLError(f"The file URL {url!r} names no directory.")
        return FileYStore(doc, root=root, **kwargs)
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        from .sql import SQLiteYStore
        from .sql.urls import database_url

        parsed = database_url(url)
        assert parsed.database is not None
        if parsed.query.get("synchronous") == "normal":
            kwargs.setdefault("fsync", False)
        return SQLiteYStore(doc, db_path=parsed.database, **kwargs)
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        from .sql import PostgresYStore

        return PostgresYStore(doc, url=url, **kwargs)
    if not scheme and url.lower().endswith(_SQLITE_SUFFIXES):
        from .sql import SQLiteYStore

        return SQLiteYStore(doc, db_path=url, **kwargs)
    shown = scheme or url
    raise InvalidStoreURLError(
        f"ystores does not know where to store documents for {shown!r}: use file:///dir/, "
        "sqlite:///file.db (or a path ending in .db) or postgresql://user@host/dbname."
    )
