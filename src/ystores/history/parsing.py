"""Reading the times, durations, sizes and retention policies people type.

One module for every option that takes them (`ystore log --since`, `export --at`,
`restore --at`, `retain --keep`, `serve --retain`), so they all read alike. Each
parser raises `ValueError` with one sentence that says what is accepted.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

from .policy import RetentionPolicy

__all__ = ["parse_duration", "parse_retention", "parse_size", "parse_time"]

_DURATION = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[a-z]*)\s*$", re.IGNORECASE)
_SECONDS = {
    "": 1.0,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
}
_BYTES = {
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1 << 10,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1 << 20,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1 << 30,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1 << 40,
}
_DURATION_HELP = "a duration such as 90s, 15m, 2h, 30d or 1w"
_SIZE_HELP = "a size such as 500KB, 64MiB or 1GB"


def parse_duration(text: str) -> float:
    """Seconds from `90s`, `15m`, `2h`, `30d`, `1w` (a bare number is seconds).

    Raises:
        ValueError: Not such a duration.
    """
    match = _DURATION.match(text)
    unit = match["unit"].lower() if match else None
    if match is None or unit not in _SECONDS:
        raise ValueError(f"{text!r} is not {_DURATION_HELP}.")
    return float(match["number"]) * _SECONDS[unit]


def parse_size(text: str) -> int:
    """Bytes from `500KB`, `64MiB`, `1GB`, `100B` (units of 1000 or of 1024 with an i).

    Raises:
        ValueError: Not such a size (a bare number is refused: it would be ambiguous
            beside a duration).
    """
    match = _DURATION.match(text)
    unit = match["unit"].lower() if match else None
    if match is None or unit not in _BYTES:
        raise ValueError(f"{text!r} is not {_SIZE_HELP}.")
    return int(float(match["number"]) * _BYTES[unit])


def parse_retention(text: str) -> RetentionPolicy:
    """A retention policy from `all`, `none`, a duration (`30d`) or a size (`64MiB`).

    Raises:
        ValueError: None of these.
    """
    word = text.strip().lower()
    if word == "all":
        return RetentionPolicy.all()
    if word == "none":
        return RetentionPolicy.none()
    match = _DURATION.match(word)
    unit = match["unit"] if match else None
    if unit is not None and unit in _SECONDS and unit != "":
        return RetentionPolicy(window=parse_duration(word))
    if unit is not None and unit in _BYTES:
        return RetentionPolicy(budget=parse_size(word))
    raise ValueError(
        f"{text!r} is not a retention: use all, none, {_DURATION_HELP} (history younger "
        f"than that is kept), or {_SIZE_HELP} (the newest history that fits is kept)."
    )


def parse_time(text: str, *, now: float) -> float:
    """Seconds since the epoch from an ISO 8601 time, epoch seconds, or an age like `2h`.

    An ISO time without a zone is UTC (`2026-03-01T12:00`, `2026-03-01 12:00:00`,
    `2026-03-01`); an age (`90s`, `15m`, `2h`, `3d`, `1w`) counts back from `now`.

    Raises:
        ValueError: None of these.
    """
    stripped = text.strip()
    try:
        value = float(stripped)
    except ValueError:
        pass
    else:
        if math.isfinite(value) and value >= 0:
            return value
    if _DURATION.match(stripped) and not stripped.replace(".", "", 1).isdigit():
        try:
            return now - parse_duration(stripped)
        except ValueError:
            pass
    try:
        moment = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use ISO 8601 (2026-03-01T12:00:00Z; UTC without a "
            "zone), seconds since the epoch, or an age such as 2h or 3d."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
