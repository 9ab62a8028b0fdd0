"""`ystore pack`: pack each document's covered history into blocks, thin its checkpoints.

What a running store does after each checkpoint (`BaseYStore.pack`), run by hand
over a whole store or one document. Readers see the same records before and
after; crash-safe and safe while servers keep writing.
"""

from __future__ import annotations

from collections.abc import Callable

from ..base import BaseYStore
from ..errors import YDocNotFound
from ..history.packing import PackReport
from ..history.thinning import ThinningPolicy
from .history import each_document

__all__ = ["pack_target"]


async def pack_target(
    target: str,
    *,
    doc: str | None = None,
    thinning: ThinningPolicy | None = None,
    block_records: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> list[tuple[str, PackReport | None]]:
    """Pack each document (or one) of a store.

    Returns:
        Each document with what was done (None: nothing to pack or drop; a
        document needs a checkpoint first: only what one covers is packed).

    Raises:
        YDocNotFound: The document named does not exist.
        StoreStateError: The store's backend does not pack history.
    """

    async def pack(store: BaseYStore) -> PackReport | None:
        if doc is not None and await store.history_stats() is None:
            raise YDocNotFound(f"{target} holds no document {doc!r}.")
        return await store.pack(thinning=thinning, block_records=block_records)

    return await each_document(target, doc, progress, pack)
