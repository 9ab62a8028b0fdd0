"""asyncpg's exception classes, or stand-ins that never match when asyncpg is absent.

The `sqlite` extra does not install asyncpg, yet the SQL modules shared by both
backends name asyncpg's errors when translating failures; they import them from
here so that a SQLite-only install works.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

__all__ = [
    "AdminShutdownError",
    "CannotConnectNowError",
    "CrashShutdownError",
    "InterfaceError",
    "InternalClientError",
    "InvalidAuthorizationSpecificationError",
    "InvalidCatalogNameError",
    "InvalidPasswordError",
    "PostgresConnectionError",
    "PostgresError",
    "TooManyConnectionsError",
]

if TYPE_CHECKING or importlib.util.find_spec("asyncpg") is not None:
    from asyncpg import (  # type: ignore[import-untyped]
        AdminShutdownError,
        CannotConnectNowError,
        CrashShutdownError,
        InterfaceError,
        InternalClientError,
        InvalidAuthorizationSpecificationError,
        InvalidCatalogNameError,
        InvalidPasswordError,
        PostgresConnectionError,
        PostgresError,
        TooManyConnectionsError,
    )
else:

    class _Absent(Exception):
        """Never raised: asyncpg is not installed, so no Postgres error can occur."""

    AdminShutdownError = CannotConnectNowError = CrashShutdownError = _Absent
    InterfaceError = InternalClientError = InvalidAuthorizationSpecificationError = _Absent
    InvalidCatalogNameError = InvalidPasswordError = PostgresConnectionError = _Absent
    PostgresError = TooManyConnectionsError = _Absent
