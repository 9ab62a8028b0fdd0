"""Opening a store's files safely: under its root at every open, directories made durable.

A file store's root may hold symbolic links, and they may change while a store is
open (a sub-directory swapped for a link to elsewhere). So a path is resolved and
checked against the root each time a file is opened, created, renamed over or
deleted, never only when the store is made; the final component is opened with
`O_NOFOLLOW`, so it cannot be swapped for a link between the check and the open.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import StoreIOError

__all__ = ["fsync_directory", "inside_root", "make_directories", "open_inside"]


def inside_root(path: Path, root: Path | None) -> Path:
    """`path` with every symbolic link resolved now, refused if it leads outside `root`.

    Args:
        path: An absolute path under `root` (a file, or a directory).
        root: The store's root, already resolved; None when there is no root.

    Raises:
        StoreIOError: The path now leads outside the root (a link was changed).
    """
    if root is None:
        return path
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(root):
        raise StoreIOError(
            f"Refusing to use {path}: it now leads to {real}, outside the store root "
            f"{root} (a symbolic link on the way was changed). Nothing was read or written."
        )
    return real


def open_inside(path: Path, root: Path | None, flags: int, mode: int = 0o644) -> tuple[int, Path]:
    """Open `path` (checked by `inside_root`) without following a link at its end.

    Returns:
        The descriptor and the resolved path it was opened at.

    Raises:
        StoreIOError: The path leads outside the root, or its last component is a link.
        OSError: The operating system refused the open.
    """
    real = inside_root(path, root)
    try:
        fd = os.open(real, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if root is not None and os.path.islink(real):  # swapped for a link since the check
            raise StoreIOError(
                f"Refusing to open {path}: it was replaced by a symbolic link while it was "
                "opened. Nothing was read or written."
            ) from exc
        raise
    return fd, real


def make_directories(directory: Path, root: Path | None) -> list[Path]:
    """Create `directory` and its missing parents (each checked under `root`).

    Returns:
        The directories created, outermost first; their entries are durable only once
        the directory holding each is fsynced (`fsync_directory`).
    """
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    created: list[Path] = []
    for path in reversed(missing):
        if root is not None and path.is_relative_to(root) and path != root:
            inside_root(path.parent, root)
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            continue
        created.append(path)
    return created


def fsync_directory(directory: Path) -> None:
    """Make a rename, a new file or a new directory in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
