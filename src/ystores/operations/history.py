"""A document's history, seen from the command line: its log, a past state, a restore.

The library side of `ystore log`, `export --at`, `restore`, `checkpoint` and
`retain`. Each opens the document's store, asks it (`read_records`, `state_at`,
`checkpoint`, `retain`) and closes it. `restore` appends one record, the only
change it makes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import pycrdt

from .. import crdt
from ..base import BaseYStore
from ..compaction.policy import SquashReport
from ..compaction.sweep import open_target_store, store_documents
from ..errors import HistoryNotKeptError, StoreStateError, YDocNotFound
from ..history.checkpoints import CheckpointReport, decode_header
from ..history.policy import RetentionPolicy
from ..history.reading import records_with_checkpoints
from ..history.revert import revert_update
from ..records import Record, RecordKind
from ..targets import resolve_target

__all__ = [
    "LogEntry",
    "RestoreReport",
    "checkpoint_target",
    "decode_metadata",
    "document_log",
    "each_document",
    "restore_document",
    "retain_target",
    "state_at_time",
]

R = TypeVar("R")


@dataclass(frozen=True)
class LogEntry:
    """One record of a document's history.

    Attributes:
        seq: Its position in the log.
        kind: `update`, `snapshot` or `checkpoint`.
        timestamp: When it was written (seconds since the epoch).
        size: Bytes of its update (uncompressed).
        metadata: Its metadata bytes (a checkpoint's header for a checkpoint).
        covers: For a checkpoint, the highest seq merged into it.
    """

    seq: int
    kind: str
    timestamp: float
    size: int
    metadata: bytes
    covers: int | None = None

    def metadata_value(self) -> Any:
        """The metadata as JSON data when it is JSON, text when UTF-8, else `0x` and hex."""
        if self.covers is not None:
            return {"covers": self.covers}
        return decode_metadata(self.metadata)


def decode_metadata(metadata: bytes) -> Any:
    """Metadata for people: None when empty, parsed JSON, UTF-8 text, else `0x` and hex."""
    if not metadata:
        return None
    try:
        text = metadata.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + metadata.hex()
    if text[:1] in ("{", "[", '"'):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


@dataclass(frozen=True)
class RestoreReport:
    """What `restore_document` did.

    Attributes:
        doc: The document.
        at: The time it was restored to.
        seq: The seq of the one record appended (None when the content already was that).
        size: Bytes of that record's update.
    """

    doc: str
    at: float
    seq: int | None
    size: int


def _store(target: str, doc: str) -> BaseYStore:
    resolved = resolve_target(target, existing=True)
    if resolved.kind == "file":
        # A store file is one document, named by the file (as `ystore ls` shows it).
        path = Path(resolved.location)
        if doc not in (resolved.location, path.name, str(path.resolve())):
            raise YDocNotFound(
                f"{target} is the store file of one document, {path.name!r}, not {doc!r}."
            )
        return open_target_store(resolved, resolved.location)
    return open_target_store(resolved, doc)


def _entry(record: Record) -> LogEntry:
    covers = None
    if record.kind == RecordKind.CHECKPOINT:
        header = decode_header(record.metadata)
        covers = None if header is None else header.covers
    return LogEntry(
        seq=record.seq,
        kind=record.kind.name.lower(),
        timestamp=record.timestamp,
        size=len(record.update),
        metadata=record.metadata,
        covers=covers,
    )


async def document_log(
    target: str, doc: str, *, since: float | None = None, until: float | None = None
) -> list[LogEntry]:
    """The records of a document's history kept, oldest first, checkpoints included.

    Args:
        target: The store (file, directory, SQLite file, database URL).
        doc: The document's name.
        since: Only records written at or after this time.
        until: Only records written at or before this time.

    Raises:
        YDocNotFound: No such document.
    """
    store = _store(target, doc)
    entries: list[LogEntry] = []
    try:
        records = records_with_checkpoints(store)
        try:
            async for record in records:
                if since is not None and record.timestamp < since:
                    continue
                if until is not None and record.timestamp > until:
                    continue
                entries.append(_entry(record))
        finally:
            aclose = getattr(records, "aclose", None)
            if aclose is not None:
                await aclose()
    finally:
        await store.aclose()
    return entries


async def state_at_time(target: str, doc: str, at: float) -> bytes:
    """The document as it was at time `at` (every record written by then), as one update.

    Raises:
        YDocNotFound: No such document.
        HistoryNotKeptError: That time is older than the history kept.
    """
    store = _store(target, doc)
    try:
        return await store.state_at(at)
    except HistoryNotKeptError as exc:
        raise _not_kept(doc, at, exc) from exc
    finally:
        await store.aclose()


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _not_kept(doc: str, at: float, exc: HistoryNotKeptError) -> HistoryNotKeptError:
    oldest = exc.oldest
    if oldest is None or not math.isfinite(oldest):
        return HistoryNotKeptError(f"The history of {doc!r} at {_utc(at)} is not kept.")
    return HistoryNotKeptError(
        f"The history of {doc!r} at {_utc(at)} is not kept: the earliest state kept is "
        f"at {_utc(oldest)} ({oldest:.3f}); give that time or a later one.",
        oldest=oldest,
    )


def _unsupported(store: BaseYStore, exc: NotImplementedError) -> StoreStateError:
    return StoreStateError(f"{type(store).__name__} stores keep no history: {exc}")


async def _current_state(store: BaseYStore) -> bytes:
    # pycrdt, like the revert: an update computed over y-py's encoding of the
    # state did not always apply to a replay of the records themselves.
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    await store.apply_updates(doc)
    return crdt.encode_state_as_update(doc)


async def restore_document(
    target: str, doc: str, at: float, *, metadata: bytes = b""
) -> RestoreReport:
    """Revert the document's content to what it was at time `at`, with one new update.

    Nothing is rewritten or deleted: one record is appended whose operations turn
    the current content into the old one (see `ystores.history.revert`), so the
    restore itself is history (and can be undone by restoring to just before it).
    Clients connected meanwhile receive it like any edit.

    Args:
        target: The store.
        doc: The document's name.
        at: The time to return to.
        metadata: Stored with the new record.

    Raises:
        YDocNotFound: No such document.
        HistoryNotKeptError: That time is older than the history kept.
    """
    store = _store(target, doc)
    store.metadata_callback = lambda: metadata
    try:
        try:
            old = await store.state_at(at)
        except HistoryNotKeptError as exc:
            raise _not_kept(doc, at, exc) from exc
        current = await _current_state(store)
        update = revert_update(current, old)
        if update is None:
            return RestoreReport(doc, at, None, 0)
        await store.write(update)
        seq = await store.last_seq()
    finally:
        await store.aclose()
    return RestoreReport(doc, at, seq, len(update))


async def _documents(target: str, doc: str | None) -> list[str]:
    if doc is not None:
        return [doc]
    return await store_documents(resolve_target(target, existing=True))


async def checkpoint_target(
    target: str, *, doc: str | None = None, progress: Callable[[int, int], None] | None = None
) -> list[tuple[str, CheckpointReport | None]]:
    """Write a checkpoint for each document (or one) of a store; nothing is deleted.

    Returns:
        Each document with what was written (None: its latest checkpoint already
        covered everything).

    Raises:
        YDocNotFound: The document named does not exist.
    """
    return await each_document(target, doc, progress, lambda store: store.checkpoint())


async def retain_target(
    target: str,
    policy: RetentionPolicy,
    *,
    doc: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[tuple[str, SquashReport | None]]:
    """Apply a retention policy to each document (or one) of a store; content never changes.

    Returns:
        Each document with what was removed (None: nothing was due).
    """
    return await each_document(target, doc, progress, lambda store: store.retain(policy))


async def each_document(
    target: str,
    doc: str | None,
    progress: Callable[[int, int], None] | None,
    work: Callable[[BaseYStore], Awaitable[R]],
) -> list[tuple[str, R]]:
    """Run `work` on each document (or `doc`) of a store, each opened and closed in turn.

    A document that disappears meanwhile is left out (unless it is `doc`); a backend
    without the operation raises a clear error.
    """
    names = await _documents(target, doc)
    results: list[tuple[str, R]] = []
    for done, name in enumerate(names, 1):
        store = _store(target, name)
        try:
            results.append((name, await work(store)))
        except NotImplementedError as exc:
            raise _unsupported(store, exc) from exc
        except YDocNotFound:
            if doc is not None:
                raise
        finally:
            await store.aclose()
        if progress is not None:
            progress(done, len(names))
    return results
