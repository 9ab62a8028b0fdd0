"""`verify_store`: check every record of a store, and repair store files after a backup.

Checked per record: framing and checksums (store files), that records come in
strictly increasing seq order, that every update decodes as a Yjs v1
update, and that every checkpoint record's header matches its digest (on every
backend: a database keeps no checksum of its own for the bytes). A torn tail
(incomplete bytes at the end of a store file, a write cut short) is a problem
too. `repair=True` copies a damaged store file to `<file>.bak-<UTC time>`, then
cuts its torn tail off, or rewrites it without its damaged records (those in
the middle that fail their checksum or framing). Undecodable updates, disorder,
damaged checkpoints and databases are reported, never "repaired": restore those
from a backup (or write a new checkpoint). In a file store directory, a document that a
symbolic link leads outside the root is reported (`outside-root`) and neither
read nor repaired.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import anyio

from ..errors import StoreFormatError, StoreIOError
from ..filestore.paths import inside_root
from .inspecting import DocumentReport, Progress, scan_document
from .repairing import cut_damaged_records, cut_torn_tail
from .sources import DirectorySource, FileSource, Source, open_source

__all__ = ["Problem", "Repair", "VerifyReport", "verify_store"]


@dataclass(frozen=True)
class Problem:
    """Something wrong with a document.

    Attributes:
        document: The document's name.
        kind: `damaged`, `torn-tail`, `undecodable`, `unappliable`, `out-of-order`,
            `damaged-checkpoint` (one per checkpoint record whose header fails its
            digest) or `outside-root` (a symbolic link leading out of a store directory).
        message: What is wrong, in a sentence.
    """

    document: str
    kind: str
    message: str


@dataclass(frozen=True)
class Repair:
    """A store file repaired.

    Attributes:
        document: The document's name.
        kind: `torn-tail` (cut off) or `damaged` (the file rewritten without
            its damaged records).
        path: The file that was repaired.
        backup: The copy of the whole file made before.
        offset: Where the first removed bytes were.
        removed: Bytes removed in all.
    """

    document: str
    kind: str
    path: str
    backup: str
    offset: int
    removed: int


@dataclass
class VerifyReport:
    """What `verify_store` found (and repaired).

    Attributes:
        target: The store as named.
        documents: Documents checked.
        records: Records checked (before any repair).
        problems: Every problem found, repaired ones included.
        repairs: The store files repaired (with `repair=True`).
        remaining: The problems left after the repairs (checked again).
    """

    target: str
    documents: int = 0
    records: int = 0
    problems: list[Problem] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)
    remaining: list[Problem] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """Whether no problem is left."""
        return not self.remaining


def _problems(report: DocumentReport) -> list[Problem]:
    name = report.name
    found = []
    if report.problem is not None:
        found.append(Problem(name, "damaged", report.problem))
    if report.torn_tail is not None:
        tail = report.torn_tail
        found.append(
            Problem(
                name,
                "torn-tail",
                f"{tail.size} bytes at byte {tail.offset} are not a complete record (a "
                "write cut short); `ystore verify --repair` cuts them off after a backup.",
            )
        )
    if report.undecodable:
        seqs = ", ".join(map(str, report.undecodable[:10]))
        found.append(
            Problem(
                name,
                "undecodable",
                f"{len(report.undecodable)} updates do not decode as Yjs v1 updates (seqs {seqs}).",
            )
        )
    if report.unappliable:
        seqs = ", ".join(map(str, report.unappliable[:10]))
        found.append(
            Problem(
                name,
                "unappliable",
                f"{len(report.unappliable)} updates decode but the CRDT engine fails on them "
                f"after the records before them (seqs {seqs}); the document cannot be "
                "loaded: restore it from a backup.",
            )
        )
    for seq, why in report.damaged_checkpoints:
        found.append(
            Problem(
                name,
                "damaged-checkpoint",
                f"the checkpoint at seq {seq} is damaged: {why}. Restores skip it (an "
                "earlier checkpoint or the records are used; nothing is lost while they "
                "are kept); write a new checkpoint to restore from.",
            )
        )
    if report.out_of_order:
        seqs = ", ".join(map(str, report.out_of_order[:10]))
        found.append(Problem(name, "out-of-order", f"records out of seq order (seqs {seqs})."))
    return found


def _repairable(document: DocumentReport) -> bool:
    return document.torn_tail is not None or (
        document.problem is not None and "is damaged at byte" in document.problem
    )


def _repair(name: str, file: Path, root: Path | None, document: DocumentReport) -> Repair:
    if document.problem is None and document.torn_tail is not None:
        cut = cut_torn_tail(file, document.torn_tail, root=root)
        kind = "torn-tail"
    else:
        found = cut_damaged_records(file, root=root)
        if found is None:
            raise StoreFormatError(
                f"{file} changed while it was verified; nothing was cut. Run "
                "`ystore verify --repair` again.",
                path=str(file),
            )
        cut, kind = found, "damaged"
    return Repair(name, kind, str(file), str(cut.backup), cut.offset, cut.removed)


def _file_of(source: Source, name: str) -> tuple[Path, Path | None] | None:
    """The store file of a document and the root it must stay under, if it is a file."""
    if isinstance(source, FileSource):
        return source.path, None
    if isinstance(source, DirectorySource):
        root = source.root.resolve()
        return root / name, root
    return None


def _outside_root(source: Source, name: str) -> Problem | None:
    located = _file_of(source, name)
    if located is None or located[1] is None:
        return None
    try:
        inside_root(*located)
    except StoreIOError:
        return Problem(
            name,
            "outside-root",
            "a symbolic link leads this document outside the store root; it was neither "
            "read nor repaired. Replace the link by the file it points to, or remove it.",
        )
    return None


async def verify_store(
    target: str, *, repair: bool = False, progress: Progress | None = None
) -> VerifyReport:
    """Check every record of every document of a store.

    Without `repair` nothing is written. With it, damaged store files are copied
    to `<file>.bak-<UTC time>` and repaired (see the module docstring), then
    checked again; nothing else is changed.

    Args:
        target: A store file, a file store directory, a SQLite file or a database URL.
        repair: Repair store files with a torn tail or damaged records (after a backup).
        progress: Called after each document with its name, how many documents are
            done and how many there are.

    Raises:
        YStoreError: The store cannot be opened (see `open_source`).
    """
    source = open_source(target)
    report = VerifyReport(target)
    try:
        if (
            isinstance(source, FileSource)
            and source.problem is not None
            and not (repair and "is damaged at byte" in source.problem)
        ):
            report.documents = 1
            report.problems.append(Problem(source.path.name, "damaged", source.problem))
            report.remaining = list(report.problems)
            return report
        names = await source.names()
        for done, name in enumerate(names, 1):
            report.documents += 1
            outside = _outside_root(source, name)
            if outside is not None:
                report.problems.append(outside)
                report.remaining.append(outside)
                continue
            document = await scan_document(source, name, decode=True)
            report.records += document.records
            found = _problems(document)
            report.problems.extend(found)
            located = _file_of(source, name)
            if repair and located is not None and _repairable(document):
                file, root = located
                report.repairs.append(
                    await anyio.to_thread.run_sync(_repair, name, file, root, document)
                )
                found = _problems(await scan_document(source, name, decode=True))
            report.remaining.extend(found)
            if progress is not None:
                progress(name, done, len(names))
        return report
    finally:
        await source.aclose()
