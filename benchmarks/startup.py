"""Start-up time: `import ystores` and `ystore --help`, beside sqlite-utils' CLI.

Each command runs in a fresh interpreter; the row is the median wall time of
`repeats` runs after one warm-up run (so the files are in the page cache).
Targets: `import ystores` within 150 ms, `ystore --help` within 300 ms.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from scenarios import Row

BIN = Path(sys.executable).parent
TARGETS_MS = {"import ystores": 150.0, "ystore --help": 300.0}


def _median_ms(command: list[str], repeats: int) -> float:
    subprocess.run(command, capture_output=True, check=True, timeout=120)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True, timeout=120)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def startup(repeats: int) -> list[Row]:
    """One row per command: the bare interpreter, ystores, and sqlite-utils."""
    python = sys.executable
    commands: list[tuple[str, str, list[str]]] = [
        ("python -c pass", "baseline", [python, "-c", "pass"]),
        ("import ystores", "ystores", [python, "-c", "import ystores"]),
        ("ystore --help", "ystores", [str(BIN / "ystore"), "--help"]),
        ("sqlite-utils --help", "sqlite-utils", [str(BIN / "sqlite-utils"), "--help"]),
    ]
    rows = []
    for impl, family, command in commands:
        if not Path(command[0]).exists():
            rows.append(Row("start-up", impl, family, float("nan"), "ms", False, "not installed"))
            continue
        value = _median_ms(command, repeats)
        target = TARGETS_MS.get(impl)
        note = ""
        if target is not None:
            note = f"target {target:.0f} ms: {'met' if value <= target else 'missed'}"
        rows.append(Row("start-up", impl, family, value, "ms", True, note))
    return rows
