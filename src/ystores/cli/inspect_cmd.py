"""`ystore inspect`: what a store file holds and whether it is healthy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..filestore.inspection import FileReport, inspect_file
from .app import app, call
from .render import format_bytes, format_time, print_json


def report_as_dict(report: FileReport) -> dict[str, Any]:
    """The report as JSON-ready data."""
    metadata = [
        {"metadata": _show_bytes(value), "records": count}
        for value, count in report.metadata.most_common()
    ]
    tail = report.torn_tail
    return {
        "path": report.path,
        "size": report.size,
        "format": report.format,
        "version": report.version,
        "records": report.records,
        "snapshots": report.snapshots,
        "update_bytes": report.update_bytes,
        "first_timestamp": report.first_timestamp,
        "last_timestamp": report.last_timestamp,
        "last_seq": report.last_seq,
        "metadata": metadata,
        "healthy": report.healthy,
        "torn_tail": None if tail is None else {"offset": tail.offset, "size": tail.size},
        "undecodable": report.undecodable,
        "problem": report.problem,
    }


def _show_bytes(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return "0x" + value.hex()


@app.command("inspect")
def inspect_command(
    path: Annotated[Path, typer.Argument(help="A store file (ystores or ypy-websocket format).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show a store file's format, records, metadata and health; never changes it.

    Exits with 1 when the file is damaged or cannot be read.
    """
    report = call(lambda: inspect_file(path))
    if as_json:
        print_json(report_as_dict(report))
    else:
        _print_table(report)
    if report.problem is not None:
        raise typer.Exit(1)


def _print_table(report: FileReport) -> None:
    table = Table(title=report.path, show_header=False)
    table.add_row("format", report.format)
    table.add_row("size", format_bytes(report.size))
    table.add_row("records", f"{report.records} ({report.snapshots} snapshots)")
    table.add_row("updates", format_bytes(report.update_bytes))
    table.add_row("first write", format_time(report.first_timestamp))
    table.add_row("last write", format_time(report.last_timestamp))
    distinct = ", ".join(
        f"{_show_bytes(value) or '(empty)'} x{count}"
        for value, count in report.metadata.most_common(5)
    )
    more = len(report.metadata) - 5
    table.add_row("metadata", distinct + (f" and {more} more" if more > 0 else "") or "-")
    table.add_row("health", _health(report))
    Console().print(table)


def _health(report: FileReport) -> str:
    if report.problem is not None:
        return f"[red]damaged[/red]: {report.problem}"
    notes = []
    if report.torn_tail is not None:
        notes.append(
            f"torn tail of {report.torn_tail.size} bytes at byte {report.torn_tail.offset} "
            "(cut off before the next write)"
        )
    if report.undecodable:
        notes.append(
            f"{len(report.undecodable)} undecodable updates (seqs {report.undecodable[:5]})"
        )
    return "[yellow]" + "; ".join(notes) + "[/yellow]" if notes else "[green]ok[/green]"
