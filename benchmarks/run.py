"""Run the ystores benchmarks side by side with ypy-websocket and pycrdt-store.

    python benchmarks/run.py            # full sizes (minutes)
    python benchmarks/run.py --smoke    # tiny sizes (seconds), as CI runs it
    python benchmarks/run.py --json     # machine-readable results
    python benchmarks/run.py --only propagation   # edits between two `ystore serve`s
    python benchmarks/run.py --only history   # restore, time travel, size with history kept

The first run makes benchmarks/.venv with ystores and the peers
(`pip install -e '.[bench]'`) unless the current interpreter already has them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".venv"


def ensure_environment() -> None:
    """Re-run inside benchmarks/.venv (made on first use) unless the peers import here."""
    needed = ("ystores", "ypy_websocket", "pycrdt.store", "matplotlib")
    try:
        if all(importlib.util.find_spec(name) for name in needed):
            return
    except ModuleNotFoundError:
        pass
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"Making {VENV} with ystores and the peers (once)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[all,bench]"], check=True
        )
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])


SIZES = {
    "full": {
        "seq": 5000,
        "repeats": 3,
        "docs": 20,
        "per_doc": 500,
        "procs": 4,
        "per_proc": 500,
        "restore": [5000, 50000],
        "read": 50000,
        "squash": 50000,
        "megabytes": 100,
        "startup": 15,
        "history": {
            "updates": 50000,
            "checkpoint_every": 1000,
            "month": {"docs": 4, "days": 30, "keys": (80, 500)},
        },
        "propagation": {
            "docs": 20,
            "rate": 500,
            "seconds": 20,
            "clients": 3,
            "flood_rate": 2000,
            "client_processes": 4,
        },
    },
    "smoke": {
        "seq": 100,
        "repeats": 1,
        "docs": 3,
        "per_doc": 30,
        "procs": 2,
        "per_proc": 30,
        "restore": [200],
        "read": 200,
        "squash": 200,
        "megabytes": 1,
        "startup": 3,
        "history": {
            "updates": 300,
            "checkpoint_every": 50,
            "month": {"docs": 2, "days": 3, "keys": (10, 40)},
        },
        "propagation": {
            "docs": 3,
            "rate": 60,
            "seconds": 2,
            "clients": 2,
            "flood_rate": 150,
            "client_processes": 1,
        },
    },
}


async def run_all(size: dict[str, object], backends: set[str], only: set[str]) -> list[object]:
    import scenarios as s

    rows: list[object] = []
    if not only or "sequential" in only:
        rows += await s.sequential_writes(size["seq"], size["repeats"], backends)
    if not only or "concurrent" in only:
        rows += await s.concurrent_writes(size["docs"], size["per_doc"], backends)
    if not only or "multiprocess" in only:
        rows += await s.multiprocess_writes(size["procs"], size["per_proc"], backends)
    if not only or "restore" in only:
        for count in size["restore"]:
            rows += await s.restore(count, backends)
    if not only or "read" in only:
        rows += await s.read_all(size["read"], backends)
    if not only or "squash" in only:
        rows += await s.squash(size["squash"], backends)
    if not only or "memory" in only:
        rows += await s.memory(size["megabytes"], backends)
    if not only or "startup" in only:
        from startup import startup

        rows += await startup(size["startup"])
    if not only or "history" in only:
        import history

        rows += await history.history(size["history"], backends)
    if not only or "propagation" in only:
        import propagation

        rows += await propagation.propagation(size["propagation"], backends)
    await s.drop_bench_database()
    return rows


def best_peer(rows: list[dict[str, object]], lower_is_better: bool) -> float | None:
    peers = [
        float(r["value"])
        for r in rows
        if r["family"] not in ("ystores", "baseline")
        and r["verified"]
        and not math.isnan(float(r["value"]))
    ]
    if not peers:
        return None
    return min(peers) if lower_is_better else max(peers)


def print_tables(rows: list[dict[str, object]]) -> None:
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        group = [r for r in rows if r["scenario"] == scenario]
        unit = str(group[0]["unit"])
        lower = unit != "updates/s"
        best = best_peer(group, lower)
        print(f"\n## {scenario}  ({unit}, {'lower' if lower else 'higher'} is better)\n")
        print(f"| implementation | {unit} | vs best peer | read back complete | note |")
        print("|---|---:|---:|---|---|")
        for r in group:
            value = float(r["value"])
            ratio = "-"
            if r["family"] == "ystores" and best and not math.isnan(value):
                ratio = f"{(best / value if lower else value / best):.2f}x"
            shown = "n/a" if math.isnan(value) else f"{value:,.1f}"
            print(
                f"| {r['impl']} | {shown} | {ratio} | {'yes' if r['verified'] else 'NO'} "
                f"| {r['note']} |"
            )


def plot(rows: list[dict[str, object]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = [r for r in rows if r["unit"] == "updates/s"]
    scenarios = list(dict.fromkeys(r["scenario"] for r in rates))
    fig, axes = plt.subplots(len(scenarios), 1, figsize=(9, 3.2 * len(scenarios)))
    for axis, scenario in zip(axes if len(scenarios) > 1 else [axes], scenarios, strict=True):
        group = [r for r in rates if r["scenario"] == scenario]
        colors = ["tab:blue" if r["family"] == "ystores" else "tab:gray" for r in group]
        axis.barh([str(r["impl"]) for r in group], [float(r["value"]) for r in group], color=colors)
        axis.set_title(str(scenario))
        axis.set_xlabel("updates/s (higher is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds (CI)")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of tables")
    parser.add_argument("--plot", type=Path, help="write a PNG of the throughputs here")
    parser.add_argument(
        "--backend",
        action="append",
        choices=["file", "sqlite", "postgres"],
        help="only these backends (repeatable; default all)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=[
            "sequential",
            "concurrent",
            "multiprocess",
            "restore",
            "read",
            "squash",
            "memory",
            "startup",
            "history",
            "propagation",
        ],
        help="only these scenarios (repeatable; default all)",
    )
    args = parser.parse_args()
    ensure_environment()
    sys.path.insert(0, str(HERE))
    (HERE / ".cache").mkdir(exist_ok=True)
    import anyio
    import scenarios

    size = SIZES["smoke" if args.smoke else "full"]
    backends = set(args.backend or ["file", "sqlite", "postgres"])
    rows = [asdict(r) for r in anyio.run(run_all, size, backends, set(args.only or []))]
    if args.json:
        print(json.dumps({"machine": scenarios.describe_machine(), "rows": rows}, indent=2))
    else:
        print(
            f"# ystores benchmarks ({'smoke' if args.smoke else 'full'} sizes) on "
            f"{scenarios.describe_machine()}"
        )
        print_tables(rows)
    if args.plot:
        plot(rows, args.plot)
    if not all(r["verified"] for r in rows if r["family"] == "ystores"):
        sys.exit("A ystores store did not read back everything it wrote.")


if __name__ == "__main__":
    main()
