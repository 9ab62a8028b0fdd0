"""Compaction leases: one compactor per document, across processes and servers.

Background compaction squashes a document only while it holds the document's
lease, so two servers over one store never squash the same document at once
(the squash would stay correct, but the work would be done twice). A lease
is tied to what dies with its holder, so a server that crashes or is killed
releases its leases at once:

- Postgres: a session-level advisory lock (`pg_try_advisory_lock`) on a
  connection held while squashing; it ends with the session.
- SQLite and files: an open-file-description lock (`F_OFD_SETLK`, Linux) on one
  byte far beyond any data of the database file or document file (SQLite's own
  locks sit near 1 GiB; the byte used here is at 1 TiB and up). No side file is
  made; the lock ends when its descriptor closes, by the holder's hand or its
  death. Where OFD locks are missing, the lease only excludes compactors of
  the same process.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

__all__ = ["LEASE_OFFSET", "file_lease", "lease_byte"]

LEASE_OFFSET = 1 << 40
"""The first byte of the lease range (1 TiB: past any data and SQLite's lock bytes)."""

_held_here: set[tuple[str, int]] = set()  # leases held by this process (any platform)
_OFD_SETLK: int | None = getattr(fcntl, "F_OFD_SETLK", None)


def lease_byte(key: str) -> int:
    """The byte locked for `key` (documents sharing a byte share a lease: harmless)."""
    return LEASE_OFFSET + (zlib.crc32(key.encode("utf-8")) & 0x3FFFFFFF)


def _try_lock(fd: int, offset: int) -> bool:
    if _OFD_SETLK is None:
        return True
    # struct flock: l_type, l_whence (short), l_start, l_len (off_t), l_pid (int) + padding.
    lock = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0)
    try:
        fcntl.fcntl(fd, _OFD_SETLK, lock)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


@asynccontextmanager
async def file_lease(path: Path, key: str) -> AsyncIterator[bool]:
    """Hold the lease of `key` on the file at `path` while the block runs.

    Yields:
        Whether the lease is held (False: another compactor holds it, or there is
        no file yet); never waits.
    """
    offset = lease_byte(key)
    mark = (str(path), offset)
    if mark in _held_here:
        yield False
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)  # a write lock needs a writable descriptor
    except OSError:
        yield False
        return
    try:
        held = _try_lock(fd, offset)
        if held and os.fstat(fd).st_ino != _inode(path):
            held = False  # the file was replaced meanwhile (a squash renamed a new one in)
        if held:
            _held_here.add(mark)
        try:
            yield held
        finally:
            if held:
                _held_here.discard(mark)
    finally:
        os.close(fd)  # releases the lock


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None
