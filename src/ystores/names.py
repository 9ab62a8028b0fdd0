"""Document names, and the one rule for which files of a file store are documents.

A file store keeps document `notes/a.y` in the file `ROOT/notes/a.y`. Beside a
document's file the store may create side files of its own:

| side file | made by | pattern |
|---|---|---|
| temporary | a replace (squash, migrate, repair) before its rename | `.NAME.XXXXXXXX.tmp` |
| torn | a torn tail saved before it is cut off | `NAME.torn-OFFSET` |
| backup | `verify --repair`, the migration of a SQLite file | `NAME.bak-YYYYmmddTHHMMSSZ[-N]` |

So that no document can ever be taken for a side file (and be skipped, or deleted
as a stale temporary), nor hide from the operator tools, a document name is
refused when any of its `/`-separated parts starts with a dot or ends like a
side file (`validate_name`). Every other regular file under a root that is in a
store format is a document; the rest are strays that tools skip with a warning
(see `ystores.rootdir`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from .errors import InvalidDocumentNameError

__all__ = [
    "SideFileKind",
    "check_name",
    "is_side_file",
    "resolve_under",
    "side_file_kind",
    "validate_name",
]

SideFileKind = Literal["temporary", "torn", "backup", "index"]

_SIDE_FILES: tuple[tuple[SideFileKind, re.Pattern[str]], ...] = (
    ("temporary", re.compile(r"\..+\.[0-9a-f]{8}\.tmp")),
    ("torn", re.compile(r".+\.torn-[0-9]+")),
    ("backup", re.compile(r".+\.bak-[0-9][0-9TZ-]*")),
    ("index", re.compile(r".+\.ckpt-index")),  # a document's checkpoint index
)


def side_file_kind(filename: str) -> SideFileKind | None:
    """Which of the store's side files a file name (its last part) is, if any."""
    for kind, pattern in _SIDE_FILES:
        if pattern.fullmatch(filename):
            return kind
    return None


def is_side_file(filename: str) -> bool:
    """Whether a file name (its last part) is one of the store's side files."""
    return side_file_kind(filename) is not None


def validate_name(name: str) -> str:
    """Check a document name and return it unchanged.

    A name is a relative, `/`-separated path such as `notebooks/a.ipynb`. It may not
    be empty, absolute, or contain NUL; no part may be empty, `.` or `..`, start
    with a dot (a hidden file), or look like one of the store's side files
    (`NAME.torn-123`, `NAME.bak-20240101T000000Z`, `.NAME.0123abcd.tmp`).

    Raises:
        InvalidDocumentNameError: The name breaks one of these rules.
    """
    if not isinstance(name, str) or not name:
        raise InvalidDocumentNameError("A document name must be a non-empty string.")
    if "\x00" in name:
        raise InvalidDocumentNameError(f"The document name {name!r} contains a NUL byte.")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise InvalidDocumentNameError(
            f"The document name {name!r} is absolute; use a path relative to the store."
        )
    for part in name.replace("\\", "/").split("/"):
        if part in ("", ".", ".."):
            raise InvalidDocumentNameError(
                f"The document name {name!r} has an empty, '.' or '..' part; "
                "names must stay inside the store."
            )
        if part.startswith("."):
            raise InvalidDocumentNameError(
                f"The document name {name!r} has a part starting with a dot ({part!r}); "
                "hidden names are refused so that every document stays visible."
            )
        kind = side_file_kind(part)
        if kind is not None:
            raise InvalidDocumentNameError(
                f"The document name {name!r} ends like a {kind} file of the store "
                f"({part!r}); choose a name without that ending."
            )
    return name


def check_name(name: str) -> str | None:
    """Why a document name is refused (the message of `validate_name`), or None if it is fine.

    For callers that map a refusal to their own answer, such as a room closing a
    connection with code 4400.
    """
    try:
        validate_name(name)
    except InvalidDocumentNameError as exc:
        return str(exc)
    return None


def resolve_under(root: str | Path, name: str) -> Path:
    """The file for document `name` under `root`, refusing any escape (symlinks included).

    Raises:
        InvalidDocumentNameError: The name is invalid or resolves outside `root`.
    """
    validate_name(name)
    base = Path(root).resolve()
    target = (base / name).resolve()
    if not target.is_relative_to(base):
        raise InvalidDocumentNameError(
            f"The document name {name!r} resolves outside the store root {str(base)!r}."
        )
    return target
