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

import anyio

from ..errors import StoreIOError, YDocNotFound
from ..records import Record
from .log import FileLog
from .scanning import Scanner

__all__ = ["RecordReader"]

T = TypeVar("T")


class RecordReader(Generic[T]):
    """Streams the records of one file from disk, each passed through `convert`.

    Args:
        file_log: The document's file.
        convert: Turns each record into what the iterator yields.
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
        convert: Callable[[Record], T],
        on_end: Callable[[Scanner], None],
    ) -> None:
        self._file_log = file_log
        self._convert = convert
        self._on_end = on_end
        self._file: BinaryIO | None = None
        self._scanner: Scanner | None = None
        self._batches: Iterator[list[Record]] | None = None
        self._pending: deque[Record] = deque()
        self._done = False

    def __aiter__(self) -> RecordReader[T]:
        return self

    async def __anext__(self) -> T:
        while not self._pending:
            if self._done:
                raise StopAsyncIteration
            try:
                await self._read_batch()
            except BaseException:
                self.close()
                raise
        return self._convert(self._pending.popleft())

    async def _read_batch(self) -> None:
        path = self._file_log.path
        try:
            if self._batches is None:
                try:
                    opened = await anyio.to_thread.run_sync(self._file_log.open_reader)
                except FileNotFoundError:
                    raise YDocNotFound(f"There is no document at {path}.") from None
                self._file, fmt, size = opened
                if fmt is None:
                    raise YDocNotFound(f"The document at {path} holds no update yet.")
                self._scanner = self._file_log.scanner(self._file, fmt, size)
                self._batches = iter(self._scanner)
            batch = await anyio.to_thread.run_sync(next, self._batches, None)
        except OSError as exc:
            raise StoreIOError(f"Could not read {path}: {exc.strerror or exc}.") from exc
        if batch is None:
            self.close()
            assert self._scanner is not None
            self._on_end(self._scanner)
            if self._scanner.count == 0:
                raise YDocNotFound(f"The document at {path} holds no update yet.")
        else:
            self._pending.extend(batch)

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
