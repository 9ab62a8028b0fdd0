"""`ystore inspect`: what a store holds and whether it is healthy; never changes it.

Also home of the helpers the operator commands share: running a library
coroutine with one-line errors, and a progress bar over documents.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import anyio
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Column, Table

from ..operations import content_as_json, document_content, inspect_store
from ..operations.inspecting import DocumentReport, RecordInfo, StoreReport
from .app import app, library_errors
from .render import format_bytes, format_time, print_json

T = TypeVar("T")


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

    with library_errors():
        return anyio.run(body)


@contextmanager
def document_progress(label: str) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar over documents on stderr (shown only on a terminal, then erased)."""
    console = Console(stderr=True, emoji=False)
    with Progress(console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(label, total=None)

        def advance(name: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"{label} {name}")

        yield advance


def show_bytes(value: bytes) -> str:
    """Metadata as text when it is UTF-8, else `0x` and hex."""
    try:
        return value.decode()
    except UnicodeDecodeError:
        return "0x" + value.hex()


def _ranges(ranges: dict[int, list[tuple[int, int]]]) -> dict[str, list[list[int]]]:
    return {str(client): [[a, b] for a, b in spans] for client, spans in ranges.items()}


def record_as_dict(info: RecordInfo) -> dict[str, Any]:
    """One record as JSON-ready data."""
    return {
        "seq": info.seq,
        "kind": info.kind,
        "timestamp": info.timestamp,
        "size": info.size,
        "metadata": show_bytes(info.metadata),
        "structs": _ranges(info.structs),
        "deletes": _ranges(info.deletes),
        "error": info.error,
    }


def document_as_dict(doc: DocumentReport) -> dict[str, Any]:
    """One document's report as JSON-ready data."""
    tail = doc.torn_tail
    data: dict[str, Any] = {
        "name": doc.name,
        "records": doc.records,
        "snapshots": doc.snapshots,
        "update_bytes": doc.update_bytes,
        "first_timestamp": doc.first_timestamp,
        "last_timestamp": doc.last_timestamp,
        "last_seq": doc.last_seq,
        "metadata": {
            "distinct": len(doc.metadata),
            "values": [
                {"metadata": show_bytes(value), "records": count}
                for value, count in doc.metadata.most_common(20)
            ],
        },
        "healthy": doc.healthy,
        "torn_tail": None if tail is None else {"offset": tail.offset, "size": tail.size},
        "undecodable": doc.undecodable,
        "out_of_order": doc.out_of_order,
        "checkpoint_bytes": doc.checkpoint,
        "problem": doc.problem,
    }
    if doc.record_list is not None:
        data["record_list"] = [record_as_dict(r) for r in doc.record_list]
    return data


def report_as_dict(report: StoreReport) -> dict[str, Any]:
    """The store's report as JSON-ready data."""
    return {
        "target": report.target,
        "kind": report.kind,
        "format": report.format,
        "version": report.version,
        "size": report.size,
        "healthy": report.healthy,
        "problem": report.problem,
        "documents": [document_as_dict(d) for d in report.documents],
    }


@app.command("inspect")
def inspect_cli(
    target: Annotated[
        str,
        typer.Argument(
            help="A store file (any format version, ypy-websocket's too), a file store "
            "directory or file:///dir/, a SQLite file or sqlite:///file.db (ystores, "
            "ypy-websocket or pycrdt-store), or postgresql://user@host/dbname."
        ),
    ],
    doc: Annotated[str | None, typer.Option("--doc", help="Only this document (its name).")] = None,
    content: Annotated[
        bool,
        typer.Option(
            "--content",
            help="Print the document's content: each root with its type and value "
            "(needs --doc unless the store holds one document).",
        ),
    ] = False,
    records: Annotated[
        bool,
        typer.Option(
            "--records",
            help="List every record: seq, kind, time, size, metadata, and the client ids "
            "and clock ranges its update writes and deletes.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Show what a store holds and whether it is healthy; never changes it.

    For the store: its format or schema version and size. For each document:
    records and snapshots, bytes, first and last write, metadata values with their
    counts, and health (checksums and framing, torn tail, updates that do not
    decode). SQLite files are opened read-only; nothing is created or cut.

    Exits with 1 when the store, or a document in it, cannot be read (damage,
    unknown format); a torn tail alone is reported but exits with 0.
    """
    inspect_command(target, doc=doc, content=content, records=records, as_json=as_json)


def inspect_command(
    target: str | os.PathLike[str],
    *,
    doc: str | None = None,
    content: bool = False,
    records: bool = False,
    as_json: bool = False,
) -> None:
    """Run `ystore inspect` (also called by `ystore demo` on the file it wrote)."""
    target = os.fspath(target)
    if content:
        _content(target, doc, as_json)
        return
    with document_progress("Inspecting") as progress:
        report = run_operation(
            lambda: inspect_store(target, doc=doc, records=records, progress=progress)
        )
    if as_json:
        print_json(report_as_dict(report))
    else:
        _print_report(report)
    if report.problem is not None or any(d.problem is not None for d in report.documents):
        raise typer.Exit(1)


def _content(target: str, doc: str | None, as_json: bool) -> None:
    if doc is None:
        from ..operations import list_store

        names = [d.name for d in run_operation(lambda: list_store(target))]
        if len(names) != 1:
            typer.echo(
                f"Error: {target} holds {len(names)} documents; choose one with --doc NAME "
                "(`ystore ls` lists them).",
                err=True,
            )
            raise typer.Exit(2)
        doc = names[0]
    name = doc
    roots = run_operation(lambda: document_content(target, name))
    if as_json:
        print_json(content_as_json(roots))
        return
    console = Console(emoji=False)
    if not roots:
        console.print("(the document is empty)")
    for root_name, root in roots.items():
        console.print(f"[bold]{escape(root_name)}[/bold] ({root.type})")
        if isinstance(root.value, str):
            console.print(escape(root.value), highlight=False)
        else:
            console.print(escape(json.dumps(root.value, indent=2, ensure_ascii=False)))


def _metadata_summary(doc: DocumentReport, limit: int = 3) -> str:
    values = ", ".join(
        f"{show_bytes(value) or '(empty)'} x{count}"
        for value, count in doc.metadata.most_common(limit)
    )
    more = len(doc.metadata) - limit
    return (values + (f" and {more} more" if more > 0 else "")) or "-"


def _health(doc: DocumentReport) -> str:
    if doc.problem is not None:
        return f"[red]damaged[/red]: {escape(doc.problem)}"
    notes = []
    if doc.torn_tail is not None:
        notes.append(
            f"torn tail of {doc.torn_tail.size} bytes at byte {doc.torn_tail.offset} "
            "(cut off before the next write, or by `ystore verify --repair`)"
        )
    if doc.undecodable:
        notes.append(f"{len(doc.undecodable)} undecodable updates (seqs {doc.undecodable[:5]})")
    if doc.out_of_order:
        notes.append(f"records out of order (seqs {doc.out_of_order[:5]})")
    return "[yellow]" + "; ".join(notes) + "[/yellow]" if notes else "[green]ok[/green]"


def _short_health(doc: DocumentReport) -> str:
    if doc.problem is not None:
        return "[red]damaged[/red]"
    if doc.torn_tail is not None:
        return "[yellow]torn tail[/yellow]"
    if doc.undecodable or doc.out_of_order:
        return "[yellow]bad records[/yellow]"
    return "[green]ok[/green]"


def _print_report(report: StoreReport) -> None:
    console = Console(emoji=False)
    store = Table(title=escape(report.target), show_header=False)
    store.add_row("kind", report.kind)
    store.add_row("format", report.format)
    store.add_row("version", "-" if report.version is None else str(report.version))
    if report.size is not None:
        store.add_row("size", format_bytes(report.size))
    store.add_row("documents", str(len(report.documents)))
    if report.problem is not None:
        store.add_row("health", f"[red]unreadable[/red]: {escape(report.problem)}")
    console.print(store)
    if len(report.documents) == 1 or any(d.record_list is not None for d in report.documents):
        for doc in report.documents:
            _print_document(console, doc)
    elif report.documents:
        _print_documents(console, report.documents)


def _print_documents(console: Console, docs: list[DocumentReport]) -> None:
    table = Table("records", "snapshots", "bytes", "first write", "last write", "metadata",
                  "health")  # fmt: skip
    table.columns.insert(0, Column("document", overflow="fold"))
    for doc in docs:
        table.add_row(
            escape(doc.name),
            str(doc.records),
            str(doc.snapshots),
            format_bytes(doc.update_bytes),
            format_time(doc.first_timestamp),
            format_time(doc.last_timestamp),
            f"{len(doc.metadata)} distinct",
            _short_health(doc),
        )
    console.print(table)


def _print_document(console: Console, doc: DocumentReport) -> None:
    table = Table(title=escape(doc.name), show_header=False)
    table.add_row("records", f"{doc.records} ({doc.snapshots} snapshots)")
    table.add_row("updates", format_bytes(doc.update_bytes))
    table.add_row("first write", format_time(doc.first_timestamp))
    table.add_row("last write", format_time(doc.last_timestamp))
    table.add_row("metadata", f"{len(doc.metadata)} distinct: " + escape(_metadata_summary(doc, 5)))
    if doc.checkpoint is not None:
        table.add_row("checkpoint", format_bytes(doc.checkpoint) + " (pycrdt-store)")
    table.add_row("health", _health(doc))
    console.print(table)
    if doc.record_list is not None:
        _print_records(console, doc.record_list)


def _clients(info: RecordInfo) -> str:
    parts = [
        f"{client}:" + ",".join(f"{a}-{b}" for a, b in spans)
        for client, spans in info.structs.items()
    ]
    parts += [
        f"del {client}:" + ",".join(f"{a}-{b}" for a, b in spans)
        for client, spans in info.deletes.items()
    ]
    return info.error or " ".join(parts) or "(empty)"


def _print_records(console: Console, records: list[RecordInfo]) -> None:
    table = Table("seq", "kind", "time", "size", "metadata", "client:clocks")
    for info in records:
        table.add_row(
            str(info.seq),
            info.kind,
            format_time(info.timestamp),
            str(info.size),
            escape(show_bytes(info.metadata)),
            escape(_clients(info)),
        )
    console.print(table)
