"""The one resolver of store arguments: what a TARGET or `--store` given to `ystore` names.

Every command, `serve` included, resolves its store argument here:

| argument | store |
|---|---|
| `data/`, an existing directory, `file:///srv/data/`, `file:data/` | a file store directory |
| `notes.y` (an existing file in a store format) | one store file |
| `ystore.db`, `x.sqlite`, an existing SQLite file, `sqlite:///x.db` | a SQLite database |
| `postgresql://user@host/db`, `postgres://...` | a Postgres database |

A path that does not exist names a SQLite database when it ends in `.db`,
`.sqlite` or `.sqlite3`, and a directory otherwise. Commands that only read (or
change what exists) pass `existing=True`: then a missing database or path is an
error and nothing is created.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

from .errors import InvalidStoreURLError, StoreConnectionError, StoreIOError

__all__ = ["SQLITE_SUFFIXES", "Target", "resolve_target", "store_url"]

SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_SQLITE_SCHEMES = ("sqlite", "sqlite+aiosqlite")
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")


@dataclass(frozen=True)
class Target:
    """A resolved store argument.

    Attributes:
        kind: `file` (one store file), `directory` (a file store's root) or
            `database` (a SQLite file or a database URL).
        location: The path, or the database URL / SQLite path, as given.
    """

    kind: Literal["file", "directory", "database"]
    location: str

    @property
    def path(self) -> Path:
        """The location as a path (for files and directories)."""
        return Path(self.location)

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file of a SQLite database (None for Postgres, files and directories)."""
        if self.kind != "database":
            return None
        if "://" not in self.location:
            return Path(self.location)
        scheme, rest = self.location.split("://", 1)
        if scheme.lower() not in _SQLITE_SCHEMES:
            return None
        return Path(unquote(rest[1:].split("?", 1)[0]))

    @property
    def url(self) -> str:
        """A URL `ystores.open_store` accepts for this store.

        Raises:
            InvalidStoreURLError: The target is a single store file, not a store of
                documents.
        """
        if self.kind == "directory":
            return "file://" + quote(str(self.path.absolute())).rstrip("/") + "/"
        if self.kind == "file":
            raise InvalidStoreURLError(
                f"{self.location} is a single store file, not a store of documents; name "
                "its directory, a SQLite file or a database URL."
            )
        sqlite = self.sqlite_path
        if sqlite is not None and "://" not in self.location:
            # escaped: a `#`, `?` or `%` in the path is part of the file's name
            return "sqlite:///" + quote(str(sqlite.absolute()))
        return self.location


def _is_sqlite_file(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def _check_port(target: str) -> None:
    try:
        urlsplit(target).port  # noqa: B018 - parsing the port is the check
    except ValueError:
        netloc = urlsplit(target).netloc.rsplit("@", 1)[-1]
        raise InvalidStoreURLError(
            f"The URL names the address {netloc!r}, whose port is not a number from 1 to 65535."
        ) from None


def _file_url(target: str) -> str:
    """The path of a `file:` URL: `file:///abs/`, `file://localhost/abs/` or `file:rel/`."""
    if not target.lower().startswith("file://"):
        path = unquote(target[len("file:") :])
    else:
        parts = urlsplit(target)
        if parts.netloc not in ("", "localhost"):
            raise InvalidStoreURLError(
                f"The file URL {target!r} names the host {parts.netloc!r}; write "
                f"file:///absolute/path/ or, for a path relative to here, "
                f"file:{parts.netloc}{parts.path}."
            )
        path = unquote(parts.path)
    if not path:
        raise InvalidStoreURLError(f"The file URL {target!r} names no directory.")
    return path


def resolve_target(target: str, *, existing: bool = False) -> Target:
    """Classify a store argument (see the module docstring).

    Args:
        target: The argument as given.
        existing: The store must exist already (commands that read or change a
            store, never create one).

    Raises:
        InvalidStoreURLError: An empty argument, an unknown URL scheme, a URL with
            an impossible port, or a `file:` URL naming another host.
        StoreConnectionError: With `existing`, no SQLite database at the path.
        StoreIOError: With `existing`, no file or directory at the path.
    """
    if not isinstance(target, str) or not target:
        raise InvalidStoreURLError("A store must not be empty.")
    if target.lower().startswith("file:"):
        directory = _file_url(target)
        if Path(directory).is_file():
            return resolve_target(directory, existing=existing)
        resolved = Target("directory", directory)
    elif "://" in target:
        scheme = target.split("://", 1)[0].lower()
        if scheme not in _SQLITE_SCHEMES + _POSTGRES_SCHEMES:
            raise InvalidStoreURLError(
                f"ystores does not know where to store documents for {target!r} (the URL "
                f"scheme {scheme!r}): use a directory, file:///dir/, a .db file, "
                "sqlite:///file.db or postgresql://user@host/dbname."
            )
        if scheme in _POSTGRES_SCHEMES:
            _check_port(target)
        resolved = Target("database", target)
    else:
        path = Path(target)
        if path.is_dir():
            return Target("directory", target)
        if path.is_file():
            if _is_sqlite_file(path) or (path.stat().st_size == 0 and _sqlite_suffix(path)):
                return Target("database", target)
            return Target("file", target)
        if target.endswith(("/", "\\")):
            resolved = Target("directory", target)
        elif _sqlite_suffix(path):
            resolved = Target("database", target)
        elif existing:
            raise StoreIOError(
                f"There is no file or directory at {target}; check the path, or name a "
                "database as sqlite:///file.db or postgresql://user@host/dbname."
            )
        else:
            resolved = Target("directory", target)
    if existing:
        _must_exist(resolved)
    return resolved


def _sqlite_suffix(path: Path) -> bool:
    return path.suffix.lower() in SQLITE_SUFFIXES


def _must_exist(target: Target) -> None:
    sqlite = target.sqlite_path
    if sqlite is not None and not sqlite.is_file():
        raise StoreConnectionError(
            f"There is no SQLite database at {sqlite}; check the path.", url=target.location
        )
    if target.kind == "directory" and not target.path.is_dir():
        raise StoreIOError(f"There is no directory at {target.location}; check the path.")


def store_url(target: str, *, existing: bool = False) -> str:
    """The `open_store` URL of a store argument naming a store of documents (for `serve`).

    Raises:
        InvalidStoreURLError: See `resolve_target`; also for a single store file.
        StoreConnectionError: With `existing`, no SQLite database at the path.
        StoreIOError: With `existing`, no directory at the path.
    """
    return resolve_target(target, existing=existing).url
