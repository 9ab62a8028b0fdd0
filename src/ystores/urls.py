"""`open_store(url, doc)`: one way to name a store of any backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import BaseYStore
from .errors import InvalidStoreURLError
from .extras import require
from .filestore.store import FileYStore
from .targets import SQLITE_SUFFIXES, resolve_target

__all__ = ["open_store"]


def _unknown_path(url: str) -> bool:
    """A bare path that exists not, and says neither directory (`/`) nor SQLite (`.db`)."""
    if ":" in url or url.endswith(("/", "\\")) or url.lower().endswith(SQLITE_SUFFIXES):
        return False
    return not Path(url).exists()


def open_store(url: str, doc: str, **kwargs: Any) -> BaseYStore:
    """A store for document `doc` in the store named by `url`.

    | URL | store |
    |---|---|
    | `file:///data/docs/`, `file:docs/`, or a directory path | `FileYStore(doc, root=...)` |
    | `sqlite:///ystore.db`, `sqlite:////abs/ystore.db`, or a `*.db` path | `SQLiteYStore` |
    | `postgresql://user:password@host:5432/dbname` (or `postgres://`) | `PostgresYStore` |

    Arguments are read by `ystores.targets.resolve_target`, the resolver every
    `ystore` command uses; a path that does not exist must end in `/` (a
    directory) or in `.db`, `.sqlite` or `.sqlite3` (a SQLite file). The SQL
    stores run on asyncio only. A SQLite URL ending in `?synchronous=normal` opens
    the store with `fsync=False` (its fast setting).

    Args:
        url: Where the documents live.
        doc: The document's name.
        **kwargs: Passed on to the store's constructor.

    Raises:
        InvalidStoreURLError: The URL's scheme is none of these, or its body is malformed.
    """
    if not isinstance(url, str) or not url:
        raise InvalidStoreURLError("A store URL must be a non-empty string.")
    if _unknown_path(url):
        raise InvalidStoreURLError(
            f"ystores does not know where to store documents for {url!r}: use a "
            "directory (data/ or file:///dir/), a SQLite file (file.db or "
            "sqlite:///file.db) or postgresql://user@host/dbname."
        )
    target = resolve_target(url)
    if target.kind == "file":
        raise InvalidStoreURLError(
            f"{url} is a single store file, not a store of documents; name its directory "
            "(file:///dir/), a SQLite file (sqlite:///file.db) or postgresql://user@host/dbname."
        )
    if target.kind == "directory":
        return FileYStore(doc, root=target.path, **kwargs)
    location = target.url
    scheme = location.split(":", 1)[0].lower()
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        require("sqlite", "SQLite stores")
        from .sql import SQLiteYStore
        from .sql.timeouts import TIMEOUT_PARAMETERS
        from .sql.urls import database_url

        if "://" not in target.location:  # a path: `#` or `?` in it are not URL syntax
            return SQLiteYStore(doc, db_path=target.location, **kwargs)
        parsed = database_url(location)
        assert parsed.database is not None
        if parsed.query.get("synchronous") == "normal":
            kwargs.setdefault("fsync", False)
        for name in TIMEOUT_PARAMETERS:  # ?write_timeout=5 and the like
            if name in parsed.query:
                kwargs.setdefault(name, float(str(parsed.query[name])))
        return SQLiteYStore(doc, db_path=parsed.database, **kwargs)
    require("postgres", "Postgres stores")
    from .sql import PostgresYStore

    return PostgresYStore(doc, url=location, **kwargs)
