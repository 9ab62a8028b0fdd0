"""`list_store`: a store's documents with their sizes and last activity."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UnknownFormatError
from ..names import side_file_kind
from ..rootdir import SideFile, walk_root
from ..targets import resolve_target
from .inspecting import Progress, scan_document
from .sources import FileSource, open_source

__all__ = ["DocumentSummary", "list_side_files", "list_store"]


@dataclass(frozen=True)
class DocumentSummary:
    """One document of a store.

    Attributes:
        name: The document's name.
        records: How many records it has (snapshots included).
        bytes: The total size of its updates.
        last_activity: When its last record was written (None when the format kept no time).
        healthy: Whether its records read back whole (torn tails and damage make it
            False; updates are not decoded here: `ystore verify` does that). Always
            True for ystores databases, which are summarized from an index query.
    """

    name: str
    records: int
    bytes: int
    last_activity: float | None
    healthy: bool


async def list_store(target: str, *, progress: Progress | None = None) -> list[DocumentSummary]:
    """The documents of a store, by name; reads without changing anything.

    Args:
        target: A store file, a file store directory, a SQLite file or a database URL.
        progress: Called after each document with its name, how many documents are
            done and how many there are.

    Raises:
        UnknownFormatError: A file that is not a store file.
        YStoreError: The store cannot be opened (see `open_source`).
    """
    source = open_source(target)
    if isinstance(source, FileSource) and source.problem is not None:
        await source.aclose()
        raise UnknownFormatError(source.problem, path=target)
    try:
        totals = await source.totals()
        if totals is not None:  # a database's index: no need to read every record
            return [DocumentSummary(n, r, b, t, healthy=True) for n, r, b, t in totals]
        summaries = []
        names = await source.names()
        for done, name in enumerate(names, 1):
            report = await scan_document(source, name, decode=False)
            summaries.append(
                DocumentSummary(
                    name,
                    report.records,
                    report.update_bytes,
                    report.last_timestamp,
                    report.healthy,
                )
            )
            if progress is not None:
                progress(name, done, len(names))
        return summaries
    finally:
        await source.aclose()


def list_side_files(target: str) -> list[SideFile]:
    """The store's own side files (temporary, torn, backup) in a file store or beside a file.

    Databases have none (a SQLite file's backups are named by `ystore migrate`).
    """
    resolved = resolve_target(target, existing=True)
    if resolved.kind == "directory":
        return walk_root(resolved.path, check_format=False).side_files
    if resolved.kind != "file":
        return []
    path = Path(resolved.location)
    found = []
    for sibling in sorted(path.absolute().parent.iterdir()):
        kind = side_file_kind(sibling.name)
        own = sibling.name.startswith((path.name + ".", "." + path.name + "."))
        if kind is not None and own and sibling.is_file():
            found.append(SideFile(sibling.name, kind, sibling.stat().st_size))
    return found
