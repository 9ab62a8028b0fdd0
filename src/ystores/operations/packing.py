"""`ystore pack`: pack each document's covered history into blocks, thin its checkpoints.

What a running store does after each checkpoint (`BaseYStore.pack`), run by hand
over a whole store or one document. Readers see the same records before and
after; crash-safe and safe while servers keep writing.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import StoreStateError, YDocNotFound
from ..history.packing import PackReport
from ..history.thinning import ThinningPolicy
from .history import _documents, _store

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
    names = await _documents(target, doc)
    results: list[tuple[str, PackReport | None]] = []
    for done, name in enumerate(names, 1):
        store = _store(target, name)
        try:
            if doc is not None and await store.history_stats() is None:
                raise YDocNotFound(f"{target} holds no document {doc!r}.")
            results.append((name, await store.pack(thinning=thinning, block_records=block_records)))
        except NotImplementedError as exc:
            raise StoreStateError(
                f"{type(store).__name__} stores do not pack their history."
            ) from exc
        except YDocNotFound:
            if doc is not None:
                raise
        finally:
            await store.aclose()
        if progress is not None:
            progress(done, len(names))
    return results
