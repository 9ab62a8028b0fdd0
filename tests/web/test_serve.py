"""`ystore serve` for production: it checks its store before listening, takes a token,
prints where to point a browser, and stores every relayed change on SIGTERM."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest

from backends import new_postgres_database
from room.kit import node, read_json_line, start_node, stop_process
from ystores import FileYStore, YDocNotFound
from ystores.compaction.policy import LogStats
from ystores.urls import open_store

from .kit import get, serve


def run_serve(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ystores", "serve", "--port", "0", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("sqlite:///{tmp}/no/such/dir/docs.db", "the directory '{tmp}/no/such/dir' does not exist"),
        ("sqlite:///{tmp}", "unable to open database file"),
        ("file://{tmp}/no/such/", "does not exist, nor does its parent {tmp}/no"),
        ("file://{tmp}/a-file/", "is a single store file, not a store of documents"),
        ("nosuch://place", "does not know where to store documents"),
    ],
)
def test_a_store_it_cannot_use_is_one_line_and_exit_1_before_listening(
    tmp_path: Path, store: str, message: str
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    result = run_serve("--store", store.format(tmp=tmp_path), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""  # no URL: nothing listens
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert message.format(tmp=tmp_path) in lines[0]


def test_a_postgres_database_that_does_not_exist(tmp_path: Path) -> None:
    existing = new_postgres_database()
    missing = existing.rsplit("/", 1)[0] + "/ystores_no_such_database"
    result = run_serve("--store", missing, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert 'database "ystores_no_such_database" does not exist' in result.stderr


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    assert run_serve("--log-level", "chatty", cwd=tmp_path).returncode == 2
    assert run_serve("--token", " ", cwd=tmp_path).returncode == 2
    assert run_serve("--max-message-size", "0", cwd=tmp_path).returncode == 2
    assert not (tmp_path / "ystore.db").exists()


def test_it_prints_the_browser_url_last_and_serves_the_page_there(tmp_path: Path) -> None:
    with serve(cwd=tmp_path, log=tmp_path / "serve.log") as served:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", served.http)
        status, headers, body = get(served.http + "/")
        assert status == 200
        assert b"Open a document" in body
        assert headers["content-type"] == "text/html; charset=utf-8"
    assert (tmp_path / "ystore.db").is_file()


def test_the_token_guards_the_websocket(node_clients: None, tmp_path: Path) -> None:
    store = f"file://{tmp_path}/docs/"
    with serve(
        "--store", store, cwd=tmp_path, log=tmp_path / "serve.log", env={"YSTORE_TOKEN": "t0k"}
    ) as served:
        assert node("raw.mjs", served.ws + "/notes/a", "00000100")["code"] == 4401
        assert node("raw.mjs", served.ws + "/notes/a?token=nope", "00000100")["code"] == 4401
        allowed = node("raw.mjs", "--expect=2", served.ws + "/notes/a?token=t0k", "00000100")
        assert allowed["code"] == 1000
        assert get(served.http + "/notes/a")[0] == 401
        assert get(served.http + "/notes/a?token=t0k")[0] == 200


async def stored_text(url: str, name: str) -> str:
    store = open_store(url, name)
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    async with store:
        with contextlib.suppress(YDocNotFound):
            await store.apply_updates(doc)
    return str(doc.get("text", type=pycrdt.Text))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_sigterm_while_clients_write_stores_every_relayed_change(
    node_clients: None, tmp_path: Path, backend: str
) -> None:
    url = f"sqlite:///{tmp_path}/docs.db" if backend == "sqlite" else new_postgres_database()
    room = "notes/busy"
    with serve("--store", url, cwd=tmp_path, log=tmp_path / "serve.log") as served:
        watcher = start_node("typist.mjs", "watch", served.ws, room)
        writers: list[subprocess.Popen[str]] = []
        try:
            assert read_json_line(watcher) == {"ready": True}
            writers = [
                start_node("typist.mjs", "write", served.ws, room, name) for name in ("a", "b")
            ]
            deadline = time.monotonic() + 60
            while len(re.findall(r"<[ab]:\d+>", anyio.run(stored_text, url, room))) < 100:
                assert time.monotonic() < deadline, "the writers wrote too little"
                time.sleep(0.3)
            served.proc.send_signal(signal.SIGTERM)
            relayed = read_json_line(watcher)["text"]
            written = [read_json_line(writer)["written"] for writer in writers]
            served.proc.wait(timeout=60)
        finally:
            for proc in (watcher, *writers):
                stop_process(proc, grace=10)
    assert served.proc.returncode == 0
    markers = re.findall(r"<[ab]:\d+>", relayed)
    assert len(markers) > 50, (written, relayed[:200])
    stored = anyio.run(stored_text, url, room)
    missing = [marker for marker in markers if marker not in stored]
    assert missing == [], (len(markers), len(missing))


NO_LOG = LogStats(tail_records=0, tail_bytes=0, has_snapshot=False, last_write=None, last_seq=0)


async def log_shape(root: Path, name: str) -> LogStats | None:
    return await FileYStore(name, root=root).log_stats()


@pytest.mark.parametrize("compaction", [True, False])
def test_background_compaction_is_on_by_default_and_can_be_turned_off(
    node_clients: None, tmp_path: Path, compaction: bool
) -> None:
    root = tmp_path / "docs"
    options = ["--compact-records", "5"] if compaction else ["--no-compaction"]
    with serve(
        "--store", f"file://{root}/", *options, cwd=tmp_path, log=tmp_path / "serve.log"
    ) as served:
        text = node("client.mjs", "edit", served.ws, "notes/a", "ana", "60", "ana")["text"]
        if compaction:  # squashed while the room is open, once more than 5 records follow
            deadline = time.monotonic() + 60
            while not (anyio.run(log_shape, root, "notes/a") or NO_LOG).has_snapshot:
                assert time.monotonic() < deadline, "the document was never squashed"
                time.sleep(0.2)
    shape = anyio.run(log_shape, root, "notes/a")
    assert shape is not None
    assert shape.has_snapshot is compaction
    assert anyio.run(stored_text, f"file://{root}/", "notes/a") == text


def test_message_size_grace_period_and_log_level_reach_the_server(
    node_clients: None, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    args = ["--max-message-size", "64", "--grace-period", "600", "--log-level", "warning"]
    with serve("--store", f"file://{tmp_path}/docs/", *args, cwd=tmp_path, log=log) as served:
        oversized = node("raw.mjs", served.ws + "/notes/a", "03" + "00" * 100)
        assert oversized["code"] == 1009
        assert "over the limit of 64" in oversized["reason"]
        assert node("client.mjs", "read", served.ws, "notes/b") == {"text": ""}
        # The client has left; the room stays open for its grace period.
        status = json.loads(get(served.http + "/.ystores/status/notes/b")[2])
        assert status["open"] is True
    assert "INFO" not in log.read_text()
    assert "Closing client" in log.read_text()  # a warning: logged at this level
