"""The `ystore` application: global options and error handling.

Each command parses its arguments, calls one library function and renders the
result. Library errors become one line on stderr and exit code 1 (usage errors
exit with 2, as usual); `--debug` shows the traceback instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, TypeVar

import typer

from ..errors import YStoreError

__all__ = ["app", "library_errors", "main"]

T = TypeVar("T")

app = typer.Typer(
    name="ystore",
    help="Serve, inspect, migrate, compact and copy Y-CRDT (Yjs) document stores.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_state = {"debug": False}


@app.callback()
def _global_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log warnings and progress.")
    ] = False,
) -> None:
    _state["debug"] = debug
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")


@contextmanager
def library_errors() -> Iterator[None]:
    """Turn ystores and OS errors into one line on stderr and exit code 1."""
    try:
        yield
    except (YStoreError, OSError) as exc:
        if _state["debug"]:
            raise
        message = str(exc) if isinstance(exc, YStoreError) else _os_message(exc)
        typer.echo(f"Error: {message}", err=True)
        raise typer.Exit(1) from None


def _os_message(exc: OSError) -> str:
    where = f" {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}:{where}." if exc.strerror else f"{exc}."


def call(function: Callable[[], T]) -> T:
    """Run a library call under `library_errors`."""
    with library_errors():
        return function()


def main() -> None:
    """Entry point of the `ystore` console script."""
    from . import commands  # noqa: F401 - registers the commands on `app`

    app()
