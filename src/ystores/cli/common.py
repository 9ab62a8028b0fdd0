"""What every command shares: one-line errors, store arguments, warnings, progress bars.

Commands import this module (and `render`), never each other.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn, TypeVar

import typer

from ..errors import YStoreError
from ..targets import Target, resolve_target

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

__all__ = [
    "Bar",
    "call",
    "fail",
    "library_errors",
    "progress_bar",
    "quiet_upgrade_log",
    "resolve",
    "run_operation",
    "settings",
    "warn",
    "warn_strays",
]

T = TypeVar("T")

settings = {"debug": False, "verbose": False}
"""The global options (`--debug`, `--verbose`), set by the application's callback."""


@contextmanager
def library_errors() -> Iterator[None]:
    """Turn ystores and OS errors into one line on stderr and exit code 1."""
    try:
        yield
    except (YStoreError, OSError) as exc:
        if settings["debug"]:
            raise
        message = str(exc) if isinstance(exc, YStoreError) else _os_message(exc)
        fail(message)


def _os_message(exc: OSError) -> str:
    where = f" {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}:{where}." if exc.strerror else f"{exc}."


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `Error: message` on stderr and exit with `code` (raises `typer.Exit`)."""
    typer.echo(f"Error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """Print `Warning: message` on stderr, as one line."""
    typer.echo(f"Warning: {' '.join(message.split())}", err=True)


def call(function: Callable[[], T]) -> T:
    """Run a library call under `library_errors`."""
    with library_errors():
        return function()


def run_operation(function: Callable[[], Awaitable[T]]) -> T:
    """Run a library coroutine in a new event loop, errors as one line and exit 1.

    Database engines opened on the way are closed before the loop ends.
    """

    async def body() -> T:
        try:
            return await function()
        finally:
            if "ystores.sql" in sys.modules:
                from ..sql import dispose_databases

                await dispose_databases()

    import anyio

    with library_errors():
        return anyio.run(body)


def resolve(target: str, *, existing: bool = True) -> Target:
    """Resolve a store argument with the one resolver (`ystores.targets`), errors as one line.

    Args:
        target: The argument.
        existing: The store must exist (every command but those that write).
    """
    return call(lambda: resolve_target(target, existing=existing))


def warn_strays(target: str) -> None:
    """For a file store directory, one warning line naming the files that are not documents."""
    resolved = resolve_target(target) if target else None
    if resolved is None or resolved.kind != "directory" or not resolved.path.is_dir():
        return
    from ..rootdir import walk_root

    listing = walk_root(resolved.path)
    message = listing.strays_warning()
    if message is not None and listing.documents:  # without documents, the command fails
        warn(message)


def stderr_console() -> Console:
    """A console on stderr (progress bars, notes)."""
    from rich.console import Console

    return Console(stderr=True, emoji=False)


class Bar:
    """A progress bar over documents: call it with `(name, done, total)` after each one."""

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress = progress
        self.label = label
        self.task = progress.add_task(label, total=None, records=0)
        self.count = 0

    def __call__(self, name: str, done: int, total: int) -> None:
        self.progress.update(
            self.task, completed=done, total=total, description=f"{self.label} {name}"
        )

    def steps(self, done: int, total: int) -> None:
        """Advance without a document name."""
        self.progress.update(self.task, completed=done, total=total)

    def add_records(self, count: int) -> None:
        """Add to the count of records shown beside the bar."""
        self.count += count
        self.progress.update(self.task, records=self.count)


@contextmanager
def progress_bar(label: str, *, records: bool = False) -> Iterator[Bar]:
    """A progress bar on stderr, shown only when stderr is a terminal, erased at the end.

    Args:
        label: What is being done ("Copying").
        records: Show a count of records (see `Bar.add_records`).
    """
    from rich.progress import Progress, TextColumn

    console = stderr_console()
    columns = [*Progress.get_default_columns()]
    if records:
        columns.append(TextColumn("{task.fields[records]} records"))
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as bar:
        yield Bar(bar, label)


class QuietUpgrades(logging.Filter):
    """Drops the store's own "was upgraded" log line while a command reports upgrades itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "was upgraded from" not in str(record.msg)


@contextmanager
def quiet_upgrade_log() -> Iterator[None]:
    """While a command reports each upgrade once on stdout, the log does not repeat it."""
    logger = logging.getLogger("ystores")
    quiet = QuietUpgrades()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


STORE_HELP = (
    "The store: a file store directory (or file:///dir/, file:dir/), a store file, a SQLite "
    "file (or sqlite:///file.db) or postgresql://user@host/dbname."
)
"""The help of every TARGET argument naming an existing store."""
