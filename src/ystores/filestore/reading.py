"""`RecordReader`: a file's records as an async iterator that is not an async generator.

Breaking out of `async for` over an async generator leaves it for the event loop
to finalize, which trio reports as a `ResourceWarning`. This iterator holds only
a plain file, closed when the records run out, on `aclose()`, or when the
iterator is dropped, so abandoning it is fine on every event loop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import BinaryIO, Generic, TypeVar

from ..errors import StoreIOError, YDocNotFound
from ..threads import run_in_worker
from .log import FileLog
from .scanning import Scanner

__all__ = ["RecordReader"]

T = TypeVar("T")


class RecordReader(Generic[T]):
    """Streams the records of one file from disk, in the shape `batches` gives them.

    Iterate over it for one item at a time, or call `next_batch()` for a whole
    batch (about a megabyte of the file) at once.

    Args:
        file_log: The document's file.
        batches: Picks the scan's shape, e.g. `Scanner.triples` (what `read()` yields).
        on_end: Called with the scanner once every record was read (torn-tail report).

    Raises (from iteration):
        YDocNotFound: There is no file, or it holds no record.
        UnknownFormatError: The file is in no known format.
        CorruptStoreError: A record fails its checksum before the end of the file.
        StoreIOError: The operating system refused the read.
    """

    def __init__(
        self,
        file_log: FileLog,
        batches: Callable[[Scanner], Iterator[list[T]]],
        on_end: Callable[[Scanner], None],
    ) -> None:
        self._file_log = file_log
        self._shape = batches
        self._on_end = on_end
        self._file: BinaryIO | None = None
        self._scanner: Scanner | None = None
        self._batches: Iterator[list[T]] | None = None
        self._pending: deque[T] = deque()
        self._done = False

    def __aiter__(self) -> RecordReader[T]:
        return self

    async def __anext__(self) -> T:
        while not self._pending:
            if self._done:
                raise StopAsyncIteration
            batch = await self.next_batch()
            if batch is not None:
                self._pending.extend(batch)
        return self._pending.popleft()

    async def next_batch(self) -> list[T] | None:
        """The next batch of records read from disk, or None once they ran out."""
        if self._done:
            return None
        try:
            return await self._read_batch()
        except BaseException:
            self.close()
            raise

    async def _read_batch(self) -> list[T] | None:
        path = self._file_log.path
        try:
            if self._batches is None:
                try:
                    opened = await run_in_worker(self._file_log.open_reader)
                except FileNotFoundError:
                    raise YDocNotFound(f"There is no document at {path}.") from None
                self._file, fmt, size = opened
                if fmt is None:
                    raise YDocNotFound(f"The document at {path} holds no update yet.")
                self._scanner = self._file_log.scanner(self._file, fmt, size)
                self._batches = self._shape(self._scanner)
            batches = self._batches
            batch = await run_in_worker(lambda: next(batches, None))
        except StoreIOError:
            raise
        except OSError as exc:
            raise StoreIOError(f"Could not read {path}: {exc.strerror or exc}.") from exc
        if batch is None:
            self.close()
            assert self._scanner is not None
            self._on_end(self._scanner)
            if self._scanner.count == 0:
                raise YDocNotFound(f"The document at {path} holds no update yet.")
        return batch

    def close(self) -> None:
        """Stop reading and close the file."""
        self._done = True
        self._pending.clear()
        if self._file is not None:
            self._file.close()
            self._file = None

    async def aclose(self) -> None:
        """Stop reading and close the file."""
        self.close()

    def __del__(self) -> None:
        self.close()
