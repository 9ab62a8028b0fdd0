"""How large `.jupyter_ystore.db` grows over a realistic editing session: pycrdt-store's
`SQLiteYStore` (jupyter-collaboration's default) against `ystores.jupyter.SQLiteYStore`.

    python benchmarks/jupyter_session.py            # full size: 3 documents x 8 sessions
    python benchmarks/jupyter_session.py --smoke    # a few seconds, as CI runs it
    python benchmarks/jupyter_session.py --json

The session: each document starts from a 5 KB source (stored whole, as a room does when it
first loads a file), then is edited in working sessions, one Yjs update per keystroke
(85 % insertions near a moving cursor, 15 % deletions), an hour apart. Both stores receive
the same updates through `write()`. ystores' store runs with its default compaction (after
60 s without a write, or 1,000 updates): a running store squashes in the background; the
idle squash at the end of each session is what its compactor does 60 s after the last
write, so the simulated clock jumps an hour and `compact()` runs it at once. pycrdt-store
runs with jupyter-collaboration's defaults (no squash; a checkpoint every 100 updates).
At the end, each database is checkpointed (WAL folded in) and measured, and every document
is loaded back from both and compared with the editor's text.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pycrdt
from pycrdt.store import SQLiteYStore as PycrdtSQLiteYStore

from ystores.jupyter import SQLiteYStore


@dataclass
class Size:
    store: str
    bytes: int
    rows: int


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def session_updates(doc: pycrdt.Doc[Any], keystrokes: int, rng: random.Random) -> list[bytes]:
    """One update per keystroke typed into `doc`'s `source` text."""
    text = doc.get("source", type=pycrdt.Text)
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(event.update))
    cursor = rng.randrange(len(text) + 1)
    for _ in range(keystrokes):
        if rng.random() < 0.15 and cursor > 0:
            cursor -= 1
            del text[cursor]
        else:
            text.insert(cursor, rng.choice("abcdefghijklmnopqrstuvwxyz ()=:\n"))
            cursor += 1
        if rng.random() < 0.02:  # the user clicks elsewhere
            cursor = rng.randrange(len(text) + 1)
    doc.unobserve(subscription)
    return updates


async def simulate(
    directory: Path, documents: int, sessions: int, keystrokes: int
) -> dict[str, Any]:
    rng = random.Random(7)
    clock = FakeClock()
    ours_db, theirs_db = directory / "ystores.db", directory / "pycrdt-store.db"

    class Theirs(PycrdtSQLiteYStore):
        db_path = str(theirs_db)

    docs: dict[str, pycrdt.Doc[Any]] = {}
    for i in range(documents):
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        doc["source"] = pycrdt.Text("".join(rng.choice("abcdefgh \n") for _ in range(5000)))
        docs[f".notebook:{i:04d}.y"] = doc

    for session in range(sessions):
        for name, doc in docs.items():
            ours = SQLiteYStore(path=name, db_path=str(ours_db), fsync=False, clock=clock)
            theirs = Theirs(name)
            async with ours, theirs:
                if session == 0:
                    await ours.encode_state_as_update(doc)
                    await theirs.encode_state_as_update(doc)
                for update in session_updates(doc, keystrokes, rng):
                    clock.now += 0.3
                    await ours.write(update)
                    await theirs.write(update)
                clock.now += 3600
                await ours.compact()  # what the running store's compactor does when idle
    for name, doc in docs.items():
        expected = str(doc.get("source", type=pycrdt.Text))
        for store in (SQLiteYStore(path=name, db_path=str(ours_db)), Theirs(name)):
            loaded: pycrdt.Doc[Any] = pycrdt.Doc()
            async with store:
                await store.apply_updates(loaded)
            if str(loaded.get("source", type=pycrdt.Text)) != expected:
                raise SystemExit(f"{type(store).__name__} lost content of {name}")
    return {
        "documents": documents,
        "sessions": sessions,
        "keystrokes_per_session": keystrokes,
        "updates": documents * sessions * keystrokes,
        "sizes": [asdict(measure("ystores", ours_db)), asdict(measure("pycrdt-store", theirs_db))],
    }


def measure(label: str, database: Path) -> Size:
    with sqlite3.connect(database) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        data = [t for t in tables if t in ("ystore_records", "yupdates", "ycheckpoints")]
        rows = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in data)
    conn.close()
    return Size(label, database.stat().st_size, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    documents, sessions, keystrokes = (2, 2, 150) if args.smoke else (3, 8, 1000)
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(simulate(Path(tmp), documents, sessions, keystrokes))
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    print(
        f"{result['documents']} documents x {result['sessions']} sessions x "
        f"{result['keystrokes_per_session']} keystrokes = {result['updates']} updates"
    )
    for size in result["sizes"]:
        print(f"{size['store']:>14}: {size['bytes'] / 1024:10.1f} KiB  {size['rows']:7d} rows")


if __name__ == "__main__":
    main()
