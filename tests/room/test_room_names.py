"""Rooms refuse names that would hide a document or pass for a store's side file (4400)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ystores.room import YStoreApp

from .kit import node, serve_in_thread

HOSTILE = [".hidden", "u/.profile", "report.bak-2024", "notes.torn-1", ".a.y.0123abcd.tmp"]


@pytest.mark.parametrize("backend", ["directory", "sqlite"])
def test_hostile_room_names_are_refused_with_4400(
    backend: str, tmp_path: Path, node_clients: None
) -> None:
    root = tmp_path / "root"
    store = f"{root}/" if backend == "directory" else f"sqlite:///{tmp_path / 'rooms.db'}"
    with serve_in_thread(YStoreApp(store, grace_period=0)) as url:
        for name in HOSTILE:
            closed = node("raw.mjs", f"{url}/{name}", "00000100")
            assert closed["code"] == 4400, (name, closed)
            assert name in closed["reason"]
            assert closed["received"] == 0
        accepted = node("raw.mjs", "--expect=2", f"{url}/notes.tmpl", "00000100")
        assert accepted["code"] == 1000, accepted
    created = sorted(p.name for p in root.rglob("*")) if root.exists() else []
    assert not [n for n in created if n.startswith(".") or ".torn-" in n or ".bak-" in n]
