"""Document names: relative paths that stay under a store's root."""

from __future__ import annotations

from pathlib import Path

from .errors import InvalidDocumentNameError

__all__ = ["resolve_under", "validate_name"]


def validate_name(name: str) -> str:
    """Check a document name and return it unchanged.

    A name is a relative, `/`-separated path such as `notebooks/a.ipynb`. It may not
    be empty, absolute, contain NUL, or have an empty, `.` or `..` component.

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
    return name


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
