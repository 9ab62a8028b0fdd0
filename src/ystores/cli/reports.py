"""Rendering `inspect` reports: as JSON-ready data, and as tables that fit the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from .render import Col, format_bytes, format_time, print_table, show_bytes, stdout_console

if TYPE_CHECKING:
    from ..operations.inspecting import DocumentReport, RecordInfo, StoreReport

__all__ = ["document_as_dict", "print_report", "record_as_dict", "report_as_dict"]


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
        "checkpoints": doc.checkpoints,
        "history_checkpoint_bytes": doc.checkpoint_bytes,
        "raw_bytes": doc.raw_bytes,
        "stored_bytes": doc.stored_bytes,
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


def _sizes(doc: DocumentReport) -> str:
    raw = format_bytes(doc.raw_bytes) + " raw"
    if doc.stored_bytes is None:
        return raw
    return f"{format_bytes(doc.stored_bytes)} stored, {raw}"


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


def print_report(report: StoreReport) -> None:
    """Print an inspect report: the store, then its documents, as tables."""
    console = stdout_console()
    rows = [
        ["kind", report.kind],
        ["format", report.format],
        ["version", "-" if report.version is None else str(report.version)],
    ]
    if report.size is not None:
        rows.append(["size", format_bytes(report.size)])
    rows.append(["documents", str(len(report.documents))])
    if report.problem is not None:
        rows.append(["health", f"[red]unreadable[/red]: {escape(report.problem)}"])
    print_table([Col("", fold=True), Col("")], rows, title=escape(report.target),
                show_header=False, console=console)  # fmt: skip
    if len(report.documents) == 1 or any(d.record_list is not None for d in report.documents):
        for doc in report.documents:
            _print_document(console, doc)
    elif report.documents:
        _print_documents(console, report.documents)


def _print_documents(console: Console, docs: list[DocumentReport]) -> None:
    columns = [
        Col("document", keep=100, fold=True),
        Col("records", keep=90, justify="right"),
        Col("snapshots", keep=20, justify="right"),
        Col("checkpoints", keep=25, justify="right"),
        Col("bytes", keep=80, justify="right"),
        Col("stored", keep=30, justify="right"),
        Col("first write", keep=10),
        Col("last write", keep=60),
        Col("metadata", keep=15),
        Col("health", keep=95),
    ]
    rows = [
        [
            escape(doc.name),
            str(doc.records),
            str(doc.snapshots),
            str(doc.checkpoints),
            format_bytes(doc.raw_bytes),
            "-" if doc.stored_bytes is None else format_bytes(doc.stored_bytes),
            format_time(doc.first_timestamp),
            format_time(doc.last_timestamp),
            f"{len(doc.metadata)} distinct",
            _short_health(doc),
        ]
        for doc in docs
    ]
    print_table(columns, rows, console=console)


def _print_document(console: Console, doc: DocumentReport) -> None:
    rows = [
        ["records", f"{doc.records} ({doc.snapshots} snapshots)"],
        ["updates", format_bytes(doc.update_bytes)],
        ["checkpoints", f"{doc.checkpoints} ({format_bytes(doc.checkpoint_bytes)})"],
        ["size", _sizes(doc)],
        ["first write", format_time(doc.first_timestamp)],
        ["last write", format_time(doc.last_timestamp)],
        ["metadata", f"{len(doc.metadata)} distinct: " + escape(_metadata_summary(doc, 5))],
    ]
    if doc.checkpoint is not None:
        rows.append(["checkpoint", format_bytes(doc.checkpoint) + " (pycrdt-store)"])
    rows.append(["health", _health(doc)])
    print_table([Col("", keep=100), Col("", fold=True)], rows, title=escape(doc.name),
                show_header=False, console=console)  # fmt: skip
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
    columns = [
        Col("seq", keep=100, justify="right"),
        Col("kind", keep=60),
        Col("time", keep=50),
        Col("size", keep=90, justify="right"),
        Col("metadata", keep=40, fold=True),
        Col("client:clocks", keep=80, fold=True),
    ]
    rows = [
        [
            str(info.seq),
            info.kind,
            format_time(info.timestamp),
            str(info.size),
            escape(show_bytes(info.metadata)),
            escape(_clients(info)),
        ]
        for info in records
    ]
    print_table(columns, rows, console=console)
