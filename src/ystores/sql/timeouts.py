"""How long a database operation may take: connect, statement, write.

Every SQL store bounds its database work in time, so that a database that stops
answering (a network partition, a blackholed route, a lock another process
holds) turns into a `StoreConnectionError` instead of a `write()` that hangs.

- `connect_timeout` (10 s): opening a connection (Postgres); switching a new
  SQLite file to WAL.
- `statement_timeout` (10 s): one statement's round trip (Postgres); waiting for
  another process's lock (SQLite's `busy_timeout`).
- `write_timeout` (15 s): a whole `write()`, its flush, connecting and retrying included.

Each is a constructor argument of the SQL stores and a query parameter of the
database URL (`postgresql://host/db?write_timeout=5`, `sqlite:///f.db?statement_timeout=30`);
the constructor argument wins. Stores of one URL share one connection pool, so
the timeouts are part of the URL that names it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import URL

from ..errors import InvalidStoreURLError

__all__ = ["TIMEOUT_PARAMETERS", "Timeouts", "with_timeouts", "without_timeouts"]

TIMEOUT_PARAMETERS = ("connect_timeout", "statement_timeout", "write_timeout")
"""The URL query parameters (and constructor arguments) that set the timeouts."""


@dataclass(frozen=True)
class Timeouts:
    """The time bounds of one database's operations, in seconds.

    Attributes:
        connect: Opening a connection.
        statement: One statement's round trip; on SQLite, how long a statement
            waits for another connection's lock (`busy_timeout`).
        write: A whole `write()`, from the start of its flush to its commit.
    """

    connect: float = 10.0
    statement: float = 10.0
    write: float = 15.0

    @classmethod
    def from_url(cls, url: URL) -> Timeouts:
        """The timeouts a URL's query asks for (the defaults for the others)."""
        given = {
            name: _seconds(name, url.query[name])
            for name in TIMEOUT_PARAMETERS
            if name in url.query
        }
        return cls(
            connect=given.get("connect_timeout", cls.connect),
            statement=given.get("statement_timeout", cls.statement),
            write=given.get("write_timeout", cls.write),
        )


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, tuple | list):
        value = value[-1]
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidStoreURLError(
            f"{name}={value!r} is not a timeout: give a positive number of seconds."
        )
    return seconds


def with_timeouts(url: URL, given: Mapping[str, float | None]) -> URL:
    """`url` with the timeouts in `given` (None: leave as is) set in its query, checked."""
    chosen = {name: value for name, value in given.items() if value is not None}
    for name, value in chosen.items():
        if name not in TIMEOUT_PARAMETERS:
            raise TypeError(f"{name} is not a timeout.")
        _seconds(name, value)
    if not chosen:
        Timeouts.from_url(url)  # checks what the URL itself says
        return url
    url = url.update_query_dict({name: _format(value) for name, value in chosen.items()})
    Timeouts.from_url(url)
    return url


def _format(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def without_timeouts(url: URL) -> URL:
    """`url` without ystores' timeout parameters (the drivers do not know them)."""
    return url.difference_update_query(TIMEOUT_PARAMETERS)
