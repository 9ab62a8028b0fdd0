"""Database URLs: parsing, the driver ystores picks, and hiding passwords in messages."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ..errors import InvalidStoreURLError
from ..sqlite_uris import sqlite_uri
from .timeouts import TIMEOUT_PARAMETERS, Timeouts

__all__ = ["database_url", "safe_url", "sqlite_uri", "sqlite_url"]

_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")
_SQLITE_SCHEMES = ("sqlite", "sqlite+aiosqlite")


SQLITE_SYNC = {"full": "FULL", "normal": "NORMAL"}
"""The `synchronous` settings a SQLite URL may ask for (`?synchronous=normal`)."""


def sqlite_url(path: str | os.PathLike[str], *, synchronous: str = "full") -> URL:
    """The async (aiosqlite) URL of the SQLite database file at `path`, made absolute.

    Args:
        path: The database file.
        synchronous: "full" (the default: a commit returns once it is on disk) or
            "normal" (the fast setting: in WAL mode a process crash loses nothing,
            a power loss may drop the last commits). Kept in the URL's query.

    Raises:
        InvalidStoreURLError: `path` is empty or names an in-memory database, or
            `synchronous` is neither setting.
    """
    text = os.fspath(path)
    if not text or text == ":memory:":
        raise InvalidStoreURLError(
            f"{text!r} is not a SQLite database file; ystores needs a file that "
            "several connections can share."
        )
    if synchronous not in SQLITE_SYNC:
        raise InvalidStoreURLError(
            f"synchronous={synchronous!r} is not a SQLite setting ystores offers; "
            "use 'full' (durable, the default) or 'normal' (fast)."
        )
    query = {} if synchronous == "full" else {"synchronous": synchronous}
    return URL.create(
        "sqlite+aiosqlite", database=str(Path(text).expanduser().absolute()), query=query
    )


def sqlite_synchronous(url: URL) -> str:
    """The `PRAGMA synchronous` value a SQLite URL from `sqlite_url` asks for."""
    return SQLITE_SYNC[str(url.query.get("synchronous", "full"))]


def database_url(url: str | URL) -> URL:
    """Parse a database URL and choose ystores' async driver for it.

    `sqlite:///path.db` becomes `sqlite+aiosqlite:///<absolute path>` and
    `postgresql://...` (or `postgres://...`) becomes `postgresql+asyncpg://...`.

    Raises:
        InvalidStoreURLError: The URL cannot be parsed, or names a database
            other than SQLite and Postgres, or another driver.
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (ArgumentError, ValueError) as exc:
        raise InvalidStoreURLError(f"{url!r} is not a database URL ({exc}).") from exc
    scheme = parsed.drivername
    if scheme in _SQLITE_SCHEMES:
        if not parsed.database:
            raise InvalidStoreURLError(
                f"The SQLite URL {str(url)!r} names no database file; write sqlite:///path.db."
            )
        unknown = set(parsed.query) - {"synchronous", *TIMEOUT_PARAMETERS}
        if unknown:
            raise InvalidStoreURLError(
                f"The SQLite URL {str(url)!r} has options ystores does not know: "
                f"{', '.join(sorted(unknown))} (only synchronous=full|normal and "
                f"{', '.join(TIMEOUT_PARAMETERS)})."
            )
        made = sqlite_url(parsed.database, synchronous=str(parsed.query.get("synchronous", "full")))
        timeouts = {k: v for k, v in parsed.query.items() if k in TIMEOUT_PARAMETERS}
        made = made.update_query_dict(timeouts) if timeouts else made
        Timeouts.from_url(made)
        return made
    if scheme in _POSTGRES_SCHEMES:
        if not parsed.database:
            raise InvalidStoreURLError(
                f"The Postgres URL {safe_url(parsed)!r} names no database; "
                "write postgresql://user@host:5432/dbname."
            )
        Timeouts.from_url(parsed)
        return parsed.set(drivername="postgresql+asyncpg")
    raise InvalidStoreURLError(
        f"ystores cannot store documents in {safe_url(parsed)!r}: the scheme {scheme!r} is "
        "not one of sqlite:// and postgresql://."
    )


def safe_url(url: str | URL) -> str:
    """The URL as a user writes it, password hidden, for messages and logs.

    The driver ystores picked is left out (`sqlite:///...`, `postgresql://...`),
    so a message's `ystore migrate URL` can be pasted as it is.
    """
    if isinstance(url, str):
        try:
            url = make_url(url)
        except (ArgumentError, ValueError):
            return "<unparsable URL>"
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)
