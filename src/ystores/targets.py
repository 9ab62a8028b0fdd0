"""What a command-line TARGET names: a store file, a directory of them, or a database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import InvalidStoreURLError

__all__ = ["Target", "resolve_target"]

SQLITE_MAGIC = b"SQLite format 3\x00"
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


@dataclass(frozen=True)
class Target:
    """A resolved TARGET.

    Attributes:
        kind: `file` (one store file), `directory` (a file store's root) or
            `database` (a SQLite file or a database URL).
        location: The path, or the database URL / SQLite path.
    """

    kind: Literal["file", "directory", "database"]
    location: str

    @property
    def path(self) -> Path:
        """The location as a path (for files and directories)."""
        return Path(self.location)


def _is_sqlite_file(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def resolve_target(target: str) -> Target:
    """Classify a TARGET given on the command line.

    `file:///dir/` and existing directories are file stores; other URLs
    (`sqlite:///`, `postgresql://`) and SQLite files (by content, or by a `.db`,
    `.sqlite`, `.sqlite3` suffix when they do not exist yet) are databases;
    any other path is a store file.

    Raises:
        InvalidStoreURLError: An empty target, or a URL with an unknown scheme.
    """
    if not target:
        raise InvalidStoreURLError("A target must not be empty.")
    if "://" in target:
        scheme = target.split("://", 1)[0].lower()
        if scheme == "file":
            from urllib.parse import unquote, urlsplit

            return Target("directory", unquote(urlsplit(target).path))
        if scheme.split("+")[0] in ("sqlite", "postgresql", "postgres"):
            return Target("database", target)
        raise InvalidStoreURLError(
            f"ystores does not know the URL scheme {scheme!r}: use file:///dir/, "
            "sqlite:///file.db or postgresql://user@host/dbname."
        )
    path = Path(target)
    if path.is_dir():
        return Target("directory", target)
    if _is_sqlite_file(path) or (not path.exists() and path.suffix in _SQLITE_SUFFIXES):
        return Target("database", target)
    return Target("file", target)
