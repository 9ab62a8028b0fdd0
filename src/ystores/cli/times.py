"""Reading time, duration, size and retention options as one-line usage errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import typer

from ..history.parsing import parse_retention, parse_size, parse_time
from ..history.policy import RetentionPolicy

__all__ = ["TIME_HELP", "option_retention", "option_size", "option_time"]

T = TypeVar("T")

TIME_HELP = "ISO 8601 (2026-03-01T12:00:00Z; UTC without a zone), epoch seconds, or an age (2h, 3d)"
"""What every time option accepts."""


def _parsed(parse: Callable[[str], T], text: str, option: str) -> T:
    try:
        return parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def option_time(text: str | None, option: str) -> float | None:
    """A time option's value in seconds since the epoch (an age counts back from now)."""
    if text is None:
        return None
    now = time.time()
    return _parsed(lambda value: parse_time(value, now=now), text, option)


def option_retention(text: str, option: str) -> RetentionPolicy:
    """A retention option's policy (`all`, `none`, `30d`, `64MiB`)."""
    return _parsed(parse_retention, text, option)


def option_size(text: str, option: str) -> int:
    """A size option's bytes (`64MiB`)."""
    return _parsed(parse_size, text, option)
