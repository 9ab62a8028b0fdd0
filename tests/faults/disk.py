"""A small real filesystem that fills up: a tmpfs mounted for one test (ENOSPC for real)."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

FILLER = "filler.bin"


@contextlib.contextmanager
def small_disk(where: Path, size: str = "2m") -> Iterator[Path]:
    """Mount a tmpfs of `size` at `where` (needs root); unmount it afterwards."""
    where.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            "The disk-full tests mount a small tmpfs and need root (or CAP_SYS_ADMIN): "
            + result.stderr.strip()
        )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def free_bytes(disk: Path) -> int:
    stat = os.statvfs(disk)
    return stat.f_bavail * stat.f_frsize


def fill(disk: Path, leave: int = 0) -> None:
    """Fill `disk` until at most `leave` bytes are free (rounded to pages)."""
    release(disk)
    chunk = b"\xff" * 4096
    with (disk / FILLER).open("wb", buffering=0) as out:
        try:
            while free_bytes(disk) > leave:
                out.write(chunk)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise


def release(disk: Path) -> None:
    """Free what `fill` took."""
    (disk / FILLER).unlink(missing_ok=True)
