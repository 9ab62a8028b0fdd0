"""Reading a store's records with its checkpoints, whatever the backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from ..records import Record

if TYPE_CHECKING:
    from ..base import BaseYStore

__all__ = ["records_with_checkpoints"]


def records_with_checkpoints(store: BaseYStore) -> AsyncIterator[Record]:
    """`store.read_records(checkpoints=True)`, or plain `read_records()` on a backend
    that keeps no checkpoints (custom stores)."""
    reader: Callable[..., AsyncIterator[Record]] = store.read_records
    try:
        return reader(checkpoints=True)
    except TypeError:  # a backend that keeps no checkpoints takes no such argument
        return reader()
