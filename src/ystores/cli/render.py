"""Shared output helpers: times, sizes, JSON."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import typer

__all__ = ["format_bytes", "format_time", "print_json"]


def format_time(timestamp: float | None) -> str:
    """A UTC ISO time, or '-' when unknown."""
    if not timestamp:
        return "-"
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="seconds")


def format_bytes(size: int) -> str:
    """A size in B, KiB, MiB or GiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def print_json(data: Any) -> None:
    """Print `data` as indented JSON on stdout."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
