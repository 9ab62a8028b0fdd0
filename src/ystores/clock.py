"""Time, injected: stores ask a `Clock` instead of calling `time.time` directly."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "system_clock"]


class Clock(Protocol):
    """Anything that returns the current time in seconds since the epoch."""

    def __call__(self) -> float: ...


def system_clock() -> float:
    """The wall clock (`time.time`)."""
    return time.time()
