"""`verify_store`: check every record of a store, and cut torn tails after a backup.

Checked per record: framing and checksums (store files), that records come in
strictly increasing seq order, and that every update decodes as a Yjs v1
update. A torn tail (incomplete bytes at the end of a store file, a write cut
short) is a problem too; `repair=True` cuts it off after copying the whole file
to `<file>.bak-<UTC time>`. Damage in the middle of a file, undecodable updates
and disorder are reported, never "repaired": restore those from a backup.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..filestore.formats import detect_format, open_scanner
from ..filestore.scanning import TornTail
from .inspecting import DocumentReport, Progress, scan_document
from .sources import DirectorySource, FileSource, Source, open_source

__all__ = ["Problem", "Repair", "VerifyReport", "cut_torn_tail", "verify_store"]


@dataclass(frozen=True)
class Problem:
    """Something wrong with a document.

    Attributes:
        document: The document's name.
        kind: `damaged`, `torn-tail`, `undecodable` or `out-of-order`.
        message: What is wrong, in a sentence.
    """

    document: str
    kind: str
    message: str


@dataclass(frozen=True)
class Repair:
    """A torn tail cut off.

    Attributes:
        document: The document's name.
        path: The file that was cut.
        backup: The copy of the whole file made before.
        offset: The new size of the file (the end of its last complete record).
        removed: Bytes cut off.
    """

    document: str
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
        records: Records checked.
        problems: Every problem found, repaired ones included.
        repairs: The torn tails cut off (with `repair=True`).
    """

    target: str
    documents: int = 0
    records: int = 0
    problems: list[Problem] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """Whether no problem is left (repaired torn tails do not count)."""
        repaired = {r.document for r in self.repairs}
        return all(p.kind == "torn-tail" and p.document in repaired for p in self.problems)


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
    if report.out_of_order:
        seqs = ", ".join(map(str, report.out_of_order[:10]))
        found.append(Problem(name, "out-of-order", f"records out of seq order (seqs {seqs})."))
    return found


def cut_torn_tail(path: str | Path, tail: TornTail, *, now: dt.datetime | None = None) -> Path:
    """Copy a store file to `<file>.bak-<UTC time>`, then cut its torn tail off.

    Under the file's exclusive lock (writers wait); the file is scanned again first
    and nothing is cut unless the same torn tail is still there.

    Returns:
        The backup copy.

    Raises:
        StoreFormatError: The file changed meanwhile (nothing was cut).
    """
    from ..errors import StoreFormatError

    path = Path(path)
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    backup = path.with_name(f"{path.name}.bak-{stamp}")
    counter = 1
    while backup.exists():
        backup = path.with_name(f"{path.name}.bak-{stamp}-{counter}")
        counter += 1
    with open(path, "r+b") as file:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX)
        size = os.fstat(file.fileno()).st_size
        fmt = detect_format(file, size, str(path))
        scanner = None if fmt is None else open_scanner(file, fmt, size, path=str(path))
        if scanner is not None:
            for _batch in scanner:
                pass
        if scanner is None or scanner.tail != tail:
            raise StoreFormatError(
                f"{path} changed while it was verified; nothing was cut. Run "
                "`ystore verify --repair` again.",
                path=str(path),
            )
        shutil.copyfile(path, backup)
        with open(backup, "rb+") as copy:
            os.fsync(copy.fileno())
        os.ftruncate(file.fileno(), tail.offset)
        os.fsync(file.fileno())
    return backup


def _file_of(source: Source, name: str) -> Path | None:
    if isinstance(source, FileSource):
        return source.path
    if isinstance(source, DirectorySource):
        return source.root / name
    return None


async def verify_store(
    target: str, *, repair: bool = False, progress: Progress | None = None
) -> VerifyReport:
    """Check every record of every document of a store.

    Without `repair` nothing is written. With it, torn tails of store files are
    cut off after a backup copy (see `cut_torn_tail`); nothing else is changed.

    Args:
        target: A store file, a file store directory, a SQLite file or a database URL.
        repair: Cut torn tails off store files (after a backup copy).
        progress: Called after each document with its name, how many documents are
            done and how many there are.

    Raises:
        YStoreError: The store cannot be opened (see `open_source`).
    """
    source = open_source(target)
    report = VerifyReport(target)
    try:
        if isinstance(source, FileSource) and source.problem is not None:
            report.documents = 1
            report.problems.append(Problem(source.path.name, "damaged", source.problem))
            return report
        names = await source.names()
        for done, name in enumerate(names, 1):
            document = await scan_document(source, name, decode=True)
            report.documents += 1
            report.records += document.records
            report.problems.extend(_problems(document))
            file = _file_of(source, name)
            if repair and document.torn_tail is not None and file is not None:
                tail = document.torn_tail
                backup = cut_torn_tail(file, tail)
                report.repairs.append(Repair(name, str(file), str(backup), tail.offset, tail.size))
            if progress is not None:
                progress(name, done, len(names))
        return report
    finally:
        await source.aclose()
