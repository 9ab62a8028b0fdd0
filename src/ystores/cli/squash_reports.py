"""How `ystore squash` and `ystore retain` show what a squash did to one document."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .render import format_bytes

if TYPE_CHECKING:
    from ..compaction import SquashReport

__all__ = ["squash_fields", "squash_line"]


def squash_fields(report: SquashReport) -> dict[str, Any]:
    """A squash report's JSON fields (all but the document's name)."""
    return {
        "records_before": report.records_before,
        "records_after": report.records_after,
        "bytes_before": report.bytes_before,
        "bytes_after": report.bytes_after,
        "cut_seq": report.cut_seq,
        "seconds": round(report.seconds, 6),
    }


def squash_line(verb: str, name: str, report: SquashReport) -> str:
    """One line: `<verb> <name>: N records -> M, X -> Y` (sizes readable)."""
    return (
        f"{verb} {name}: {report.records_before} records -> {report.records_after}, "
        f"{format_bytes(report.bytes_before)} -> {format_bytes(report.bytes_after)}"
    )
