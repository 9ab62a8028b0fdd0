"""The month benchmark's sizes alone, with the Postgres store's size by relation.

    python benchmarks/month_size.py [--smoke] [--backends postgres,sqlite]

Runs `month_of_edits` at the size `run.py` uses and prints each store's size;
for Postgres it also prints `pg_relation_size` of every ystores relation (heap,
TOAST, each index) as the month left them, before the database is dropped (with `--detail`, also its
rows by kind and each B-tree's leaf pages, from `pgstattuple`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from notebook_month import MonthSize
from run import SIZES
from scenarios import drop_bench_database

import history

RELATIONS = """
SELECT t.relname, c.relname, pg_relation_size(c.oid)
FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_class c ON c.oid = t.oid OR c.oid = t.reltoastrelid
    OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN (t.oid, t.reltoastrelid))
WHERE t.relkind = 'r' AND n.nspname = 'public' AND t.relname LIKE 'ystore%'
ORDER BY 1, 2
"""


async def relation_sizes() -> list[tuple[str, int]]:
    """`(table: relation, bytes)` of each ystores table, its TOAST table and their indexes."""
    import asyncpg

    connection = await asyncpg.connect(os.environ["YSTORES_BENCH_POSTGRES_URL"])
    try:
        rows = await connection.fetch(RELATIONS)
    finally:
        await connection.close()
    return [(f"{row[0]}: {row[1]}", int(row[2])) for row in rows]


KINDS = """
SELECT kind, count(*), sum(length("update") + length(metadata)) FROM ystore_records
GROUP BY kind ORDER BY kind
"""
INDEXES = """
SELECT c.relname, s.leaf_pages, s.empty_pages, s.deleted_pages, s.avg_leaf_density
FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
JOIN pg_class t ON t.oid = i.indrelid, pgstatindex(c.oid) s
WHERE t.relname LIKE 'ystore%' AND c.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')
ORDER BY 1
"""


async def details() -> list[str]:
    """Rows by kind, and each B-tree's leaf pages (live, empty, deleted) and density."""
    import asyncpg

    connection = await asyncpg.connect(os.environ["YSTORES_BENCH_POSTGRES_URL"])
    try:
        lines = [
            f"kind {kind}: {count} rows, {size / 1024:.0f} KB of updates and metadata"
            for kind, count, size in await connection.fetch(KINDS)
        ]
        await connection.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        lines += [
            f"{name}: {leaf} leaf pages ({empty} empty, {deleted} deleted), "
            f"leaf density {density:.0f}%"
            for name, leaf, empty, deleted, density in await connection.fetch(INDEXES)
        ]
    finally:
        await connection.close()
    return lines


async def main(size: dict[str, Any], backends: set[str], detail: bool) -> None:
    measured = history._bytes_used

    async def bytes_used(impl: Any, root: Path) -> int:
        used = await measured(impl, root)
        if impl.backend == "postgres":
            for name, size in await relation_sizes():
                print(f"  {impl.name}: {name:<56} {size / 1024:9.0f} KB")
            for line in await details() if detail else []:
                print(f"  {impl.name}: {line}")
        return used

    history._bytes_used = bytes_used
    try:
        month = MonthSize(**size["month"])
        for row in await history.month_of_edits(month, size["checkpoint_every"], backends):
            print(f"{row.impl:<28} {row.value:9.0f} {row.unit}  {row.note}")
    finally:
        history._bytes_used = measured
        await drop_bench_database()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the smoke size")
    parser.add_argument("--backends", default="postgres,sqlite")
    parser.add_argument("--detail", action="store_true", help="Postgres rows and index pages")
    args = parser.parse_args()
    chosen = SIZES["smoke" if args.smoke else "full"]["history"]
    anyio.run(main, chosen, set(args.backends.split(",")), args.detail)
