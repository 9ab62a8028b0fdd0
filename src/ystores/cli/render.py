"""Shared output helpers: times, sizes, JSON, and tables that fit the terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

__all__ = [
    "Col",
    "format_bytes",
    "format_precise_time",
    "format_time",
    "print_json",
    "print_table",
    "show_bytes",
    "stdout_console",
]


def format_time(timestamp: float | None) -> str:
    """A UTC time as `YYYY-MM-DD HH:MM:SS`, or '-' when unknown."""
    if not timestamp:
        return "-"
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def format_precise_time(timestamp: float | None) -> str:
    """A UTC time to the millisecond (`YYYY-MM-DD HH:MM:SS.mmm`), or '-' when unknown."""
    if not timestamp:
        return "-"
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def format_bytes(size: int) -> str:
    """A size in B, KiB, MiB or GiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def show_bytes(value: bytes) -> str:
    """Metadata as text when it is UTF-8, else `0x` and hex."""
    try:
        return value.decode()
    except UnicodeDecodeError:
        return "0x" + value.hex()


def print_json(data: Any) -> None:
    """Print `data` as indented JSON on stdout."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


R = TypeVar("R")


def print_document_reports(
    results: Sequence[tuple[str, R | None]],
    *,
    as_json: bool,
    header: dict[str, Any],
    key: str,
    fields: Callable[[R], dict[str, Any]],
    line: Callable[[str, R], str],
    summary: Callable[[int], str],
) -> None:
    """Print what a command run over each document did (None: nothing for that one).

    JSON: `header` plus, under `key`, one object per document that changed
    (`doc` and `fields`). Text: `line` per document that changed, then
    `summary` of how many did.
    """
    done = [(name, report) for name, report in results if report is not None]
    if as_json:
        print_json({**header, key: [{"doc": name, **fields(report)} for name, report in done]})
        return
    for name, report in done:
        typer.echo(line(name, report))
    typer.echo(summary(len(done)))


def stdout_console() -> Console:
    """The console tables are printed on (its width: the terminal's, or COLUMNS, or 80)."""
    from rich.console import Console

    return Console(emoji=False, highlight=False)


@dataclass(frozen=True)
class Col:
    """A table column.

    Attributes:
        header: Its title (wrapped at spaces, never cut inside a word).
        keep: Priority when the terminal is narrow: columns with the lowest
            `keep` are dropped first, until the rest fit.
        fold: Long cell values may be cut anywhere (names); otherwise they wrap
            at spaces only.
        justify: Alignment of the cells.
    """

    header: str
    keep: int = 10
    fold: bool = False
    justify: Literal["left", "right"] = "left"


def _plain(cell: str | Text) -> str:
    from rich.text import Text

    return cell.plain if isinstance(cell, Text) else Text.from_markup(cell).plain


def _longest_word(text: str) -> int:
    return max((len(word) for word in text.split()), default=0)


def print_table(
    columns: Sequence[Col],
    rows: Sequence[Sequence[str | Text]],
    *,
    title: str | None = None,
    show_header: bool = True,
    console: Console | None = None,
) -> None:
    """Print a table no wider than the console: columns are dropped by priority if needed.

    Each kept column is at least as wide as its header's longest word and (unless it
    folds) its cells' longest word, so headers are never cut inside a word.
    """
    from rich.table import Table

    console = console or stdout_console()
    needs, natural = [], []
    for index, column in enumerate(columns):
        header = column.header if show_header else ""
        cells = [_plain(row[index]) for row in rows]
        natural.append(max([len(header), *(len(c) for c in cells), 1]))
        need = _longest_word(header)
        if column.fold:
            need = max(need, min(24, natural[-1]))
        else:
            need = max([need, *(_longest_word(c) for c in cells)])
        needs.append(max(need, 1))
    kept = list(range(len(columns)))

    def room() -> int:  # what the cells may use: the width less borders and padding
        return console.width - 3 * len(kept) - 1

    while len(kept) > 1 and sum(needs[i] for i in kept) > room():
        kept.remove(min(kept, key=lambda i: (columns[i].keep, -i)))
    widths: dict[int, int | None] = dict.fromkeys(kept)
    if sum(natural[i] for i in kept) > room():  # fixed widths: rich's own shrinking
        spare = room() - sum(needs[i] for i in kept)  # would cut headers
        for i in sorted(kept, key=lambda i: -columns[i].keep):
            extra = max(0, min(spare, natural[i] - needs[i]))
            widths[i] = needs[i] + extra
            spare -= extra
    table = Table(title=title, show_header=show_header, title_justify="left")
    for i in kept:
        column = columns[i]
        table.add_column(column.header, width=widths[i], min_width=needs[i],
                         justify=column.justify, overflow="fold")  # fmt: skip
    for row in rows:
        table.add_row(*(row[i] for i in kept))
    console.print(table)


def stdout_is_terminal() -> bool:
    """Whether stdout is a terminal (raw content is never wrapped when it is not)."""
    return sys.stdout.isatty()
