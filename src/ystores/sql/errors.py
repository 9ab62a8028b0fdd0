"""Translating driver exceptions (aiosqlite, asyncpg, SQLAlchemy) into the ystores tree."""

from __future__ import annotations

import sqlite3
from asyncio import CancelledError
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from ..errors import StoreConnectionError, StoreDatabaseError, YStoreError
from . import pg_errors as asyncpg

__all__ = ["translate_errors"]

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # the protocol's state broke (a server-closed connection)
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,  # the server ended the connection (restart, failover)
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    ConnectionError,
)
_DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.SQLAlchemyError,
    sqlite3.Error,
    asyncpg.PostgresError,
)


_LOCKED = "database is locked"


def _root(exc: BaseException) -> BaseException:
    """The driver's own exception under SQLAlchemy's wrappers."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "orig", None) or exc.__cause__
        if inner is None:
            break
        exc = inner
    return exc


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    reason = text[0] if text else type(exc).__name__
    return reason.rstrip(".")


@contextmanager
def translate_errors(url: str, *, connecting: bool = False) -> Iterator[None]:
    """Re-raise driver exceptions as `StoreConnectionError` or `StoreDatabaseError`.

    Args:
        url: The database URL for the message, its password already hidden.
        connecting: Whether the block opens a connection: then every driver error
            means the database could not be reached or refused the login.
    """
    try:
        yield
    except YStoreError:
        raise
    except (*_CONNECTION_ERRORS, *_DATABASE_ERRORS) as exc:
        root = _root(exc)
        if isinstance(exc, TimeoutError) or isinstance(root, TimeoutError | CancelledError):
            raise StoreConnectionError(
                f"The database {url} did not answer in time (a network partition, or a "
                "server too busy to answer); check the network and the server.",
                url=url,
            ) from exc
        if isinstance(root, sqlite3.OperationalError) and _LOCKED in str(root):
            raise StoreConnectionError(
                f"The database {url} stayed locked by another connection longer than the "
                "statement timeout (another process holds its write lock).",
                url=url,
            ) from exc
        if connecting or isinstance(root, _CONNECTION_ERRORS):
            hint = (
                "Check that the file is a SQLite database this process may read and write."
                if url.startswith("sqlite")
                else "Check that the server runs and that the URL, user and password are right."
            )
            raise StoreConnectionError(
                f"Could not connect to the database {url}: {_reason(root)}. {hint}", url=url
            ) from exc
        raise StoreDatabaseError(
            f"The database {url} refused a statement: {_reason(root)}.", url=url
        ) from exc
