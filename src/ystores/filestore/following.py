"""Files: followers woken by polling the followed file's identity, size and mtime.

The file store keeps one file per document, and processes sharing a directory
append under a file lock. A follower checks its file every `follow_interval`
seconds with one `stat` (no read): a different inode (compaction renamed a new
file over it), size or modification time means something may have changed, and
only then are the records after the follower's last seq read. Polling was chosen
over inotify: it needs no extra dependency, works on every platform and on
network file systems (where inotify does not see other machines' writes), and
one `stat` per followed document per interval is cheap next to the reads it saves.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from ..following import FOLLOW_SAFETY_INTERVAL, ChangeSignal

__all__ = ["FileSignal", "file_signal"]

_Identity = tuple[int, int, int, int] | None


def _identity(path: Path) -> _Identity:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class FileSignal(ChangeSignal):
    """Wakes a follower of one file when a `stat` of it tells something changed.

    Args:
        path: The document's file.
        interval: Seconds between two checks.
    """

    def __init__(self, path: Path, interval: float) -> None:
        super().__init__(str(path))
        self.path = path
        self.interval = interval
        self._seen: _Identity = None

    def fetching(self, after: int) -> None:
        """Note the file as it is now, before the follower reads it."""
        self._seen = _identity(self.path)
        super().fetching(after)

    async def wait(self) -> None:
        """Return once the file changed (or when notified), or after `FOLLOW_SAFETY_INTERVAL`."""
        with anyio.move_on_after(FOLLOW_SAFETY_INTERVAL):
            while _identity(self.path) == self._seen:
                if await self._notified_within(self.interval):
                    return
        self.notify()  # the file changed, or it is time to look anyway: fetch


@asynccontextmanager
async def file_signal(path: Path, interval: float) -> AsyncIterator[ChangeSignal]:
    """A `FileSignal` for one follower of `path`."""
    yield FileSignal(path, interval)
