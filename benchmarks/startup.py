"""Start-up time: `import ystores` and `ystore --help`, beside sqlite-utils' CLI.

Each command runs in a fresh interpreter; the row is the median wall time of
`repeats` runs after one warm-up run (so the files are in the page cache), and
the note gives the median CPU time (user + system), which other work on a busy
machine inflates less. Targets: `import ystores` within 150 ms, `ystore --help`
within 300 ms.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scenarios import Row

BIN = Path(sys.executable).parent
TARGETS_MS = {"import ystores": 150.0, "ystore --help": 300.0}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _median_ms(command: list[str], repeats: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds of `repeats` runs of `command`."""
    subprocess.run(command, capture_output=True, check=True, timeout=120)  # warm-up
    walls, cpus = [], []
    for _ in range(repeats):
        cpu = _cpu_seconds()
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True, timeout=120)
        walls.append((time.perf_counter() - started) * 1000)
        cpus.append((_cpu_seconds() - cpu) * 1000)
    return statistics.median(walls), statistics.median(cpus)


async def startup(repeats: int) -> list[Row]:
    """Rows for importing the package and for the CLI's help, each beside sqlite-utils."""
    python = sys.executable
    ystore, sqlite_utils = str(BIN / "ystore"), str(BIN / "sqlite-utils")
    commands: list[tuple[str, str, str, list[str]]] = [
        ("start-up: import", "python -c pass", "baseline", [python, "-c", "pass"]),
        ("start-up: import", "import ystores", "ystores", [python, "-c", "import ystores"]),
        (
            "start-up: import",
            "import sqlite_utils",
            "sqlite-utils",
            [python, "-c", "import sqlite_utils"],
        ),
        ("start-up: --help", "ystore --help", "ystores", [ystore, "--help"]),
        ("start-up: --help", "sqlite-utils --help", "sqlite-utils", [sqlite_utils, "--help"]),
    ]
    rows = []
    for scenario, impl, family, command in commands:
        if not Path(command[0]).exists():
            rows.append(Row(scenario, impl, family, float("nan"), "ms", False, "not installed"))
            continue
        wall, cpu = _median_ms(command, repeats)
        note = f"CPU {cpu:.0f} ms"
        target = TARGETS_MS.get(impl)
        if target is not None:
            note += f"; target {target:.0f} ms: {'met' if wall <= target else 'missed'}"
        rows.append(Row(scenario, impl, family, wall, "ms", True, note))
    return rows
