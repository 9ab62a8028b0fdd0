"""`file:` URIs of SQLite files, escaped (no SQLAlchemy import: read-only tools use it)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlencode

__all__ = ["sqlite_uri"]


def sqlite_uri(path: str | os.PathLike[str], **parameters: str) -> str:
    """The `file:` URI of a SQLite file for `sqlite3.connect(..., uri=True)`.

    The path is made absolute and percent-encoded, so a `#`, `?` or `%` in it
    names the file itself (unescaped, `#` starts a fragment, `?` the parameters,
    and `%xx` is decoded: another file would be opened, or created).

    Args:
        path: The database file.
        **parameters: URI parameters, such as `mode="ro"` or `immutable="1"`.
    """
    uri = Path(os.fspath(path)).expanduser().absolute().as_uri()
    return f"{uri}?{urlencode(parameters)}" if parameters else uri
