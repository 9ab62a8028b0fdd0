"""Squashing every document of a store by policy (what `ystore squash` runs)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from ..base import BaseYStore
from ..crdt import merge_updates
from ..errors import YDocNotFound
from ..rootdir import walk_root
from ..targets import Target, resolve_target
from ..threads import run_in_worker
from .policy import CompactionPolicy, LogStats, SquashReport

__all__ = ["SweepResult", "squash_target", "store_documents"]


@dataclass
class SweepResult:
    """What `squash_target` did.

    Attributes:
        target: The target, as given.
        documents: Documents examined.
        squashed: A report per document squashed (or, with `dry_run`, that would be).
        skipped: Documents not due, with their stats.
        seconds: Total time.
        vacuumed: Whether a SQLite file was vacuumed afterwards.
    """

    target: str
    documents: int = 0
    squashed: list[SquashReport] = field(default_factory=list)
    skipped: list[tuple[str, LogStats | None]] = field(default_factory=list)
    seconds: float = 0.0
    vacuumed: bool = False


async def store_documents(target: Target) -> list[str]:
    """The document names held by a target (a file is one document: its path)."""
    if target.kind == "file":
        if not target.path.is_file():
            raise FileNotFoundError(2, "No such file", target.location)
        return [target.location]
    if target.kind == "directory":  # the one rule of `ystores.rootdir`
        return walk_root(target.path).documents
    from ..sql import list_documents

    return [info.name for info in await list_documents(_database_url(target))]


def open_target_store(target: Target, doc: str) -> BaseYStore:
    """The store of one document of a target."""
    from ..filestore.store import FileYStore

    if target.kind == "file":
        return FileYStore(doc)
    if target.kind == "directory":
        return FileYStore(doc, root=target.path)
    from ..urls import open_store

    return open_store(_database_url(target), doc, create_schema=False)


def _database_url(target: Target) -> str:
    location = target.location
    if "://" in location:
        return location
    from ..sql.urls import sqlite_url

    # Rendered by SQLAlchemy: `#`, `?` and `%` in the path are escaped.
    return sqlite_url(Path(location).resolve()).render_as_string(hide_password=False)


async def squash_target(
    target: str,
    policy: CompactionPolicy | None = None,
    *,
    doc: str | None = None,
    dry_run: bool = False,
    now: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Squash every document of a store file, directory or database that `policy` calls due.

    Args:
        target: A store file, a directory of them, a database URL or SQLite file.
        policy: When a document is due; None (or an empty policy) squashes every
            document with more than one record.
        doc: Only this document.
        dry_run: Report what would be squashed; change nothing.
        now: The time the idle TTL is measured against (default: the clock).
        progress: Called with (documents done, documents in all).

    Raises:
        InvalidStoreURLError: An unknown URL scheme.
        FileNotFoundError: A file target that does not exist.
        SchemaOutdatedError: A database without the current ystores schema.
    """
    started = time.perf_counter()
    resolved = resolve_target(target, existing=True)
    names = [doc] if doc is not None else await store_documents(resolved)
    result = SweepResult(target, documents=len(names))
    when = time.time() if now is None else now
    for done, name in enumerate(names, 1):
        store = open_target_store(resolved, name)
        try:
            report = await _squash_one(store, name, policy, when, dry_run, result)
            if report is not None:
                result.squashed.append(report)
        finally:
            await store.aclose()
        if progress is not None:
            progress(done, len(names))
    if resolved.kind == "database" and result.squashed and not dry_run:
        result.vacuumed = _vacuum_sqlite(resolved)
    result.seconds = time.perf_counter() - started
    return result


async def _squash_one(
    store: BaseYStore,
    name: str,
    policy: CompactionPolicy | None,
    now: float,
    dry_run: bool,
    result: SweepResult,
) -> SquashReport | None:
    try:
        stats = await store.log_stats()
    except YDocNotFound:
        stats = None
    due = stats is not None and stats.squashable
    if due and stats is not None and policy is not None and policy.enabled:
        due = policy.due(stats, now) is not None
    if not due or stats is None:
        result.skipped.append((name, stats))
        return None
    if dry_run:
        return await _dry_run(store, name, stats)
    return await store.squash()


async def _dry_run(store: BaseYStore, name: str, stats: LogStats) -> SquashReport:
    """What `store.squash()` would report: the log is read and merged, nothing written.

    The merge is what tells the snapshot's size, so a dry run costs a squash's
    reading and merging (without its write) and reports the same numbers.
    """
    started = time.perf_counter()
    updates = [update async for update, _metadata, _timestamp in store.read()]
    merged = await run_in_worker(lambda: merge_updates(updates))
    return SquashReport(
        doc=name,
        records_before=len(updates),
        records_after=1,
        bytes_before=sum(map(len, updates)),
        bytes_after=len(merged),
        cut_seq=stats.last_seq,
        seconds=time.perf_counter() - started,
    )


def _vacuum_sqlite(target: Target) -> bool:
    """Give a SQLite file's free pages back to the file system (it shrinks)."""
    from ..sql.engines import AUTO_VACUUM
    from ..sql.urls import database_url

    url = database_url(_database_url(target))
    if url.get_backend_name() != "sqlite" or url.database is None:
        return False
    with closing(sqlite3.connect(url.database, timeout=60)) as connection:
        # A database made before ystores used incremental auto-vacuum switches to it here.
        connection.execute(AUTO_VACUUM)
        connection.execute("VACUUM")
    return True
