"""The `ystores.jupyter` stores as jupyter-collaboration and pycrdt-websocket use them."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pycrdt.store
import pytest
from traitlets import Int, Type, Unicode
from traitlets.config import Config, LoggingConfigurable

import ystores
from jupyter.conftest import JupyterStoreFactory
from ystores.compaction.policy import CompactionPolicy
from ystores.jupyter import FileYStore, PostgresYStore, SQLiteYStore, YDocNotFound

pytestmark = pytest.mark.anyio


class Extension(LoggingConfigurable):
    """A stand-in with jupyter-collaboration's own `ystore_class` trait (same definition)."""

    ystore_class = Type(
        default_value=pycrdt.store.SQLiteYStore, klass=pycrdt.store.BaseYStore, config=True
    )


def text_doc(text: str) -> pycrdt.Doc[Any]:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc["source"] = pycrdt.Text(text)
    return doc


def source_of(doc: pycrdt.Doc[Any]) -> str:
    return str(doc.get("source", type=pycrdt.Text))


@pytest.mark.parametrize("name", ["SQLiteYStore", "PostgresYStore", "FileYStore"])
def test_the_ystore_class_trait_accepts_each_class_by_name(name: str) -> None:
    config = Config()
    config.Extension.ystore_class = f"ystores.jupyter.{name}"
    chosen = Extension(config=config).ystore_class
    assert chosen is getattr(ystores.jupyter, name)
    assert issubclass(chosen, pycrdt.store.BaseYStore)
    assert issubclass(chosen, ystores.BaseYStore)


def test_configuration_reaches_the_store_like_jupyter_collaboration_passes_it(
    tmp_path: Path,
) -> None:
    config = Config()
    config.SQLiteYStore.db_path = str(tmp_path / "configured.db")
    config.SQLiteYStore.squash_after_inactivity_of = 30
    config.SQLiteYStore.squash_after_updates = 50
    log = logging.getLogger("jupyter-test")
    make = partial(SQLiteYStore, config=config)  # what YDocExtension hands the rooms
    store = make(path=".file:1234.y", log=log)
    assert store.db_path == str(tmp_path / "configured.db")
    assert store.compaction == CompactionPolicy(ttl=30, max_updates=50)
    assert store.log is log
    assert store.path == ".file:1234.y"


def test_compaction_is_on_by_default_and_can_be_switched_off() -> None:
    assert SQLiteYStore(path="d").compaction == CompactionPolicy(ttl=60, max_updates=1000)
    config = Config()
    config.SQLiteYStore.squash_after_inactivity_of = None
    config.SQLiteYStore.squash_after_updates = None
    assert SQLiteYStore(path="d", config=config).compaction is None


def test_document_ttl_is_the_deprecated_name_and_wins_when_set() -> None:
    config = Config()
    config.SQLiteYStore.document_ttl = 5
    config.SQLiteYStore.squash_after_inactivity_of = 500
    assert SQLiteYStore(path="d", config=config).compaction == CompactionPolicy(
        ttl=5, max_updates=1000
    )


def test_postgres_without_a_url_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YSTORES_DATABASE_URL", raising=False)
    with pytest.raises(ystores.InvalidStoreURLError, match=r"c\.PostgresYStore\.db_url"):
        PostgresYStore(path="d")


def test_postgres_takes_the_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YSTORES_DATABASE_URL", "postgresql://someone@db.example/docs")
    store = PostgresYStore(path="d")
    assert store.database_url.host == "db.example"


def test_the_file_store_keeps_documents_under_root_dir(tmp_path: Path) -> None:
    config = Config()
    config.FileYStore.root_dir = str(tmp_path / "docs")
    store = FileYStore(path=".notebook:abcd.y", config=config)
    # jupyter-collaboration's names are hidden files; the store keeps them visible
    assert Path(store.path) == tmp_path / "docs" / "notebook:abcd.y"
    with pytest.raises(ystores.InvalidDocumentNameError):
        FileYStore(path="a/../../escape", config=config)


async def test_a_missing_document_is_pycrdts_ydocnotfound(
    jupyter_store: JupyterStoreFactory,
) -> None:
    store = jupyter_store(".file:missing.y")
    with pytest.raises(pycrdt.store.YDocNotFound) as caught:
        await store.apply_updates(pycrdt.Doc())
    assert isinstance(caught.value, YDocNotFound)
    assert isinstance(caught.value, ystores.YDocNotFound)  # ystores' own handlers catch it too
    with pytest.raises(pycrdt.store.YDocNotFound):
        [record async for record in store.read()]


async def test_the_room_lifecycle_of_jupyter_collaboration(
    jupyter_store: JupyterStoreFactory,
) -> None:
    """What DocumentRoom.initialize does: start under start_lock, load or seed, write, stop."""
    store = jupyter_store(".file:room.y")
    async with store.start_lock:
        if not store.started.is_set():
            task = asyncio.create_task(store.start())
            await store.started.wait()
    try:
        await store.apply_updates(pycrdt.Doc())
    except pycrdt.store.YDocNotFound:
        await store.encode_state_as_update(text_doc("from the file"))
    doc = text_doc("")
    await store.apply_updates(doc)
    assert source_of(doc) == "from the file"
    timeline = [(update, timestamp) async for update, _metadata, timestamp in store.read()]
    assert len(timeline) == 1
    assert timeline[0][1] > 0
    await store.stop()  # awaitable, as pycrdt-store's
    assert task.done()
    assert task.exception() is None
    with pytest.raises(RuntimeError):
        await store.stop()


async def test_edits_persist_across_store_instances(jupyter_store: JupyterStoreFactory) -> None:
    first = jupyter_store(".notebook:n.y")
    async with first:
        doc = text_doc("cell")
        updates: list[bytes] = []
        sub = doc.observe(lambda event: updates.append(event.update))
        doc["source"].insert(4, " one")
        doc.unobserve(sub)
        await first.encode_state_as_update(doc)
        for update in updates:
            await first.write(update)
    second = jupyter_store(".notebook:n.y")
    loaded = text_doc("")
    async with second:
        await second.apply_updates(loaded)
    assert source_of(loaded) == "cell one"


async def test_a_jupyter_style_subclass_of_the_core_store_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the way jupyter-collaboration's stores.py builds its classes (traitlets
    mixed in, db_path a trait) used to fail with "no attribute 'validate'" at the first write
    because the class attribute was a traitlets descriptor."""

    class Meta(type(LoggingConfigurable), type(ystores.SQLiteYStore)):  # type: ignore[misc]
        pass

    class HandMade(LoggingConfigurable, ystores.SQLiteYStore, metaclass=Meta):
        db_path = Unicode(".jupyter_ystore.db", config=True)
        document_ttl = Int(None, allow_none=True, config=True)

    monkeypatch.chdir(tmp_path)
    config = Config()
    config.HandMade.db_path = str(tmp_path / "hand.db")
    config.HandMade.document_ttl = 7
    store = HandMade(path="doc", log=logging.getLogger("t"), config=config)
    await store.encode_state_as_update(text_doc("hand made"))
    assert (tmp_path / "hand.db").exists()
    assert not (tmp_path / ".jupyter_ystore.db").exists()  # the default, before config
    async with store:
        assert store.compaction == CompactionPolicy(ttl=7)
    doc = text_doc("")
    await ystores.SQLiteYStore("doc", db_path=tmp_path / "hand.db").apply_updates(doc)
    assert source_of(doc) == "hand made"


def test_import_ystores_imports_neither_traitlets_nor_pycrdt_store() -> None:
    code = (
        "import sys, ystores, ystores.sql, ystores.room; "
        "bad = [m for m in ('traitlets', 'pycrdt.store', 'ystores.jupyter') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_a_busy_document_is_compacted_by_default(tmp_path: Path) -> None:
    """The defaults stop the database from growing: past 1,000 updates a running store
    squashes in the background, and the content stays the same."""
    store = SQLiteYStore(path=".file:busy.y", db_path=str(tmp_path / "busy.db"), fsync=False)
    doc = text_doc("")
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text = doc.get("source", type=pycrdt.Text)
    for i in range(1200):
        text += str(i % 10)
    async with store:
        for update in updates:
            await store.write(update)
        with anyio.fail_after(60):
            while True:
                stats = await store.log_stats()
                assert stats is not None
                if stats.has_snapshot and stats.tail_records < 1000:
                    break
                await anyio.sleep(0.1)
    loaded = text_doc("")
    await SQLiteYStore(path=".file:busy.y", db_path=str(tmp_path / "busy.db")).apply_updates(loaded)
    assert source_of(loaded) == source_of(doc)


async def test_a_pycrdt_store_database_is_refused_until_migrated(tmp_path: Path) -> None:
    database = tmp_path / ".jupyter_ystore.db"

    class Theirs(pycrdt.store.SQLiteYStore):
        db_path = str(database)

    async with Theirs(".file:old.y") as theirs:
        await theirs.encode_state_as_update(text_doc("written by pycrdt-store"))
    ours = SQLiteYStore(path=".file:old.y", db_path=str(database))
    with pytest.raises(ystores.SchemaOutdatedError, match="ystore migrate"):
        await ours.apply_updates(pycrdt.Doc())
    result = await anyio.run_process(
        [sys.executable, "-m", "ystores", "migrate", str(database)], check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    doc = text_doc("")
    await SQLiteYStore(path=".file:old.y", db_path=str(database)).apply_updates(doc)
    assert source_of(doc) == "written by pycrdt-store"
