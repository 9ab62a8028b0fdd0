"""Symbolic links are checked at every open, and new directories are made durable.

A link that leads out of a store's root is refused when the file is opened, not only
when the store is made: a sub-directory swapped for a link after the store opened its
file, a document file swapped for a link, and `verify --repair` on a directory holding
a link to a file outside never write (or cut) anything outside the root.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ydocs import typing_updates
from ystores import FileYStore, StoreIOError
from ystores.filestore import log as log_module
from ystores.operations.verifying import verify_store

pytestmark = pytest.mark.anyio

UPDATES = typing_updates("links", client_id=11)


def _tree(base: Path) -> dict[str, bytes]:
    """Every file under `base` (links not followed) with its bytes, for before/after checks."""
    return {
        str(p.relative_to(base)): p.read_bytes()
        for p in sorted(base.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.fixture
def places(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    return root, outside


async def test_a_sub_directory_swapped_for_a_link_after_opening_is_refused(
    places: tuple[Path, Path],
) -> None:
    root, outside = places
    store = FileYStore("sub/doc.y", root=root, fsync=False)
    await store.write(UPDATES[0])  # the file is open now
    (root / "sub").rename(root / "old")
    (root / "sub").symlink_to(outside, target_is_directory=True)

    with pytest.raises(StoreIOError, match="outside the store root"):
        await store.write(UPDATES[1])
    with pytest.raises(StoreIOError, match="outside the store root"):
        [r async for r in store.read()]
    with pytest.raises(StoreIOError, match="outside the store root"):
        await store.squash()
    await store.aclose()
    assert list(outside.iterdir()) == []
    assert len([r async for r in FileYStore("old/doc.y", root=root).read()]) == 1


async def test_an_existing_outside_file_behind_a_swapped_directory_is_left_alone(
    places: tuple[Path, Path],
) -> None:
    root, outside = places
    victim = outside / "doc.y"
    victim.write_bytes(b"VERSION:3\n")
    store = FileYStore("sub/doc.y", root=root, fsync=False)  # made before the swap
    (root / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StoreIOError, match="outside the store root"):
        await store.write(UPDATES[0])
    await store.aclose()
    assert _tree(outside) == {"doc.y": b"VERSION:3\n"}


async def test_a_document_file_swapped_for_a_link_is_refused(places: tuple[Path, Path]) -> None:
    root, outside = places
    store = FileYStore("doc.y", root=root, fsync=False)
    await store.write(UPDATES[0])
    await store.aclose()
    (root / "doc.y").unlink()
    (outside / "victim.y").write_bytes(b"")
    (root / "doc.y").symlink_to(outside / "victim.y")
    with pytest.raises(StoreIOError):
        await store.write(UPDATES[1])
    assert (outside / "victim.y").read_bytes() == b""


async def test_links_that_stay_inside_the_root_keep_working(places: tuple[Path, Path]) -> None:
    root, _outside = places
    (root / "real").mkdir()
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    store = FileYStore("alias/doc.y", root=root, fsync=False)
    for update in UPDATES[:3]:
        await store.write(update)
    assert len([r async for r in store.read()]) == 3
    assert await store.squash() is not None
    await store.aclose()
    assert (root / "real" / "doc.y").is_file()


async def test_verify_repair_never_touches_a_file_outside_the_root(
    places: tuple[Path, Path],
) -> None:
    root, outside = places
    good = FileYStore("good.y", root=root, fsync=False)
    await good.write(UPDATES[0])
    await good.aclose()
    victim = outside / "victim.y"
    store = FileYStore(str(victim), fsync=False)
    await store.write(UPDATES[0])
    await store.aclose()
    victim.write_bytes(victim.read_bytes() + b"\x40\x00\x00\x00torn")  # a torn tail to "repair"
    (root / "evil.y").symlink_to(victim)
    before = _tree(outside)

    (root / "evil-dir").symlink_to(outside, target_is_directory=True)
    for repair in (False, True):
        report = await verify_store(str(root), repair=repair)
        # links are not documents of a store directory; one met anyway is reported
        assert all(p.kind == "outside-root" for p in report.problems), report.problems
        assert report.repairs == []
    assert _tree(outside) == before
    assert sorted(p.name for p in root.iterdir()) == ["evil-dir", "evil.y", "good.y"]


async def test_a_first_write_fsyncs_every_directory_it_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    synced: list[Path] = []
    real_fsync = log_module.fsync_directory

    def spy(directory: Path) -> None:
        synced.append(Path(directory))
        real_fsync(directory)

    monkeypatch.setattr(log_module, "fsync_directory", spy)
    store = FileYStore("a/b/c/doc.y", root=root)
    await store.write(UPDATES[0])
    resolved = root.resolve()
    assert synced == [resolved / "a/b/c", resolved / "a/b", resolved / "a", resolved]
    synced.clear()
    await store.write(UPDATES[1])
    assert synced == []  # later writes add no directory entry
    await store.aclose()

    other = FileYStore("a/b/other.y", root=root)  # an existing directory: only its own entry
    await other.write(UPDATES[0])
    await other.aclose()
    assert synced == [resolved / "a/b"]
    assert sorted(os.listdir(root / "a" / "b")) == ["c", "other.y"]
