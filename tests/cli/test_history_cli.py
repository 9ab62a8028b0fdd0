"""`ystore log`, `export --at` and `restore --at` on real file stores, SQLite and Postgres."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pycrdt
import pytest

from backends import new_postgres_database, run_sync
from ystores import open_store
from ystores.records import RecordKind

from .helpers import ok_json, one_line_error, ystore

T0 = 1_767_000_000.0  # 2025-12-29 09:20:00 UTC
EDITS = [
    (T0 + 0, "alice", "Hello"),
    (T0 + 60, "bob", "Hello world"),
    (T0 + 120, "alice", "Hello brave world"),
    (T0 + 180, "carol", "Goodbye"),
]


@pytest.fixture(params=["directory", "sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store of each backend (the document is written by `write_history`)."""
    if request.param == "directory":
        return f"file://{tmp_path / 'files'}/"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return new_postgres_database()


def write_history(target: str, doc: str = "notes/a.txt") -> None:
    """Four edits of a text, one minute apart, each with its author as JSON metadata."""

    async def write() -> None:
        ydoc: pycrdt.Doc[Any] = pycrdt.Doc()
        text = ydoc.get("text", type=pycrdt.Text)
        meta = ydoc.get("meta", type=pycrdt.Map)
        for timestamp, author, content in EDITS:
            store = open_store(
                target,
                doc,
                clock=lambda t=timestamp: t,
                metadata_callback=lambda a=author: json.dumps({"user": a}).encode(),
            )
            before = ydoc.get_state()
            with ydoc.transaction():
                del text[0 : len(text)]
                text.insert(0, content)
                meta["author"] = author
            try:
                await store.write(ydoc.get_update(before))
            finally:
                await store.aclose()

    run_sync(write)


def text_of(update: bytes) -> str:
    ydoc: pycrdt.Doc[Any] = pycrdt.Doc()
    ydoc.apply_update(update)
    return str(ydoc.get("text", type=pycrdt.Text))


def iso(timestamp: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat()


def test_log_lists_every_record_with_decoded_metadata(target: str) -> None:
    write_history(target)
    entries = ok_json("log", target, "--doc", "notes/a.txt")
    assert [e["metadata"] for e in entries] == [{"user": a} for _t, a, _c in EDITS]
    assert [e["timestamp"] for e in entries] == [t for t, _a, _c in EDITS]
    assert [e["kind"] for e in entries] == ["update"] * 4
    assert [e["seq"] for e in entries] == sorted({e["seq"] for e in entries})
    assert all(e["size"] > 0 for e in entries)
    window = ok_json(
        "log", target, "--doc", "notes/a.txt", "--since", iso(T0 + 60), "--until", str(T0 + 120)
    )
    assert [e["metadata"]["user"] for e in window] == ["bob", "alice"]
    table = ystore("log", target, "--doc", "notes/a.txt")
    assert table.exit_code == 0, table.output
    assert "2025-12-29 09:21:00.000" in table.stdout
    assert '{"user": "carol"}' in table.stdout


def test_log_errors_are_one_line(target: str) -> None:
    write_history(target)
    one_line_error(ystore("log", target, "--doc", "missing"), "missing")
    bad = ystore("log", target, "--doc", "notes/a.txt", "--since", "yesterday-ish")
    assert bad.exit_code == 2
    assert bad.stderr.count("\n") == 1, bad.stderr
    assert "--since" in bad.stderr, bad.stderr


def test_export_at_gives_the_state_of_that_time(target: str, tmp_path: Path) -> None:
    write_history(target)
    for timestamp, _author, content in EDITS:
        out = tmp_path / "state.bin"
        at = iso(timestamp + 30)
        result = ystore("export", target, "--doc", "notes/a.txt", "--at", at, "-o", str(out))
        assert result.exit_code == 0, result.output
        assert text_of(out.read_bytes()) == content
    # Exactly at a record's time includes it; epoch seconds work too.
    exact = ok_json("export", target, "--doc", "notes/a.txt", "--at", str(T0 + 60))
    assert exact["text"]["value"] == "Hello world"
    assert exact["meta"]["value"] == {"author": "bob"}
    now = ok_json("export", target, "--doc", "notes/a.txt", "--at", "0s")
    assert now["text"]["value"] == "Goodbye"


def test_restore_appends_one_update_that_brings_the_old_content_back(target: str) -> None:
    write_history(target)
    before = ok_json("log", target, "--doc", "notes/a.txt")
    report = ok_json(
        "restore", target, "--doc", "notes/a.txt", "--at", iso(T0 + 90), "--metadata", "dave"
    )
    after = ok_json("log", target, "--doc", "notes/a.txt")
    assert after[:-1] == before  # nothing rewritten
    assert len(after) == len(before) + 1
    assert after[-1]["seq"] == report["seq"]
    assert after[-1]["metadata"] == "dave"
    content = ok_json("export", target, "--doc", "notes/a.txt", "--json")
    assert content["text"]["value"] == "Hello world"
    assert content["meta"]["value"] == {"author": "bob"}
    # The history is still there: the latest edit before the restore is reachable.
    previous = ok_json("export", target, "--doc", "notes/a.txt", "--at", str(T0 + 180))
    assert previous["text"]["value"] == "Goodbye"
    # Restoring again to the same time writes nothing.
    again = ystore("restore", target, "--doc", "notes/a.txt", "--at", iso(T0 + 90))
    assert again.exit_code == 0, again.output
    assert "nothing was written" in again.stdout
    assert len(ok_json("log", target, "--doc", "notes/a.txt")) == len(after)


def test_restore_before_the_first_record_empties_the_document(target: str) -> None:
    write_history(target)
    result = ystore("restore", target, "--doc", "notes/a.txt", "--at", str(T0 - 10))
    assert result.exit_code == 0, result.output
    content = ok_json("export", target, "--doc", "notes/a.txt", "--json")
    # An emptied root holds only deleted items, so its type reads as the fallback (Array).
    assert all(root["value"] in ("", [], {}) for root in content.values()), content


def test_restore_of_a_missing_document_is_one_line(target: str) -> None:
    write_history(target)
    one_line_error(ystore("restore", target, "--doc", "nope", "--at", str(T0)), "nope")


def test_time_travel_behind_a_squash_names_the_oldest_time_kept(target: str) -> None:
    write_history(target)
    squashed = ystore("squash", target.removeprefix("file://"))
    assert squashed.exit_code == 0, squashed.output
    one_line_error(
        ystore("export", target, "--doc", "notes/a.txt", "--at", str(T0 + 30), "-o", "/dev/null"),
        "not kept",
        "2025-12-29T09:23:00Z",
    )
    one_line_error(
        ystore("restore", target, "--doc", "notes/a.txt", "--at", str(T0 + 30)), "not kept"
    )


def kinds(target: str) -> Iterator[str]:
    return (e["kind"] for e in ok_json("log", target, "--doc", "notes/a.txt"))


def test_checkpoint_and_retain_commands(target: str, tmp_path: Path) -> None:
    write_history(target)
    result = ystore("checkpoint", target, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["checkpoints"][0]["covers"] >= 4
    assert RecordKind.CHECKPOINT.name.lower() in set(kinds(target))
    again = ok_json("checkpoint", target, "--doc", "notes/a.txt")
    assert again["checkpoints"] == []  # everything is covered already
    report = ok_json("inspect", target.removeprefix("file://"))
    (doc,) = report["documents"]
    assert doc["checkpoints"] == 1
    assert doc["records"] == 4
    assert doc["raw_bytes"] > 0
    assert doc["stored_bytes"] is not None
    before = ok_json("export", target, "--doc", "notes/a.txt", "--json")
    # Every record is older than an hour: all of them are merged into the base.
    kept = ok_json("retain", target, "--keep", "1h")
    assert kept["documents"] == 1
    # The same report fields as `ystore squash --json`: the base holds what it merged.
    (retained,) = kept["retained"]
    assert retained["doc"] == "notes/a.txt"
    assert retained["records_after"] < retained["records_before"]
    assert retained["cut_seq"] >= 4
    assert set(retained) == {
        "doc",
        "records_before",
        "records_after",
        "bytes_before",
        "bytes_after",
        "cut_seq",
        "seconds",
    }
    assert ok_json("export", target, "--doc", "notes/a.txt", "--json") == before
    one_line_error(
        ystore("export", target, "--doc", "notes/a.txt", "--at", str(T0 + 30), "-o", "/dev/null"),
        "not kept",
    )
    # A copy of the retained history holds the same document.
    copy = f"sqlite:///{tmp_path / 'copy.db'}"
    copied = ystore("copy", target.removeprefix("file://"), copy)
    assert copied.exit_code == 0, copied.output
    assert ok_json("export", copy, "--doc", "notes/a.txt", "--json") == before


def test_a_store_file_is_its_one_document(tmp_path: Path) -> None:
    write_history(f"file://{tmp_path}/", "a.y")
    path = str(tmp_path / "a.y")
    assert len(ok_json("log", path, "--doc", "a.y")) == 4
    one_line_error(ystore("log", path, "--doc", "other.y"), "other.y", "'a.y'")
    report = ok_json("restore", path, "--doc", "a.y", "--at", str(T0 + 90))
    assert report["seq"] == 5
    assert ok_json("export", path, "--doc", "a.y", "--json")["text"]["value"] == "Hello world"
    failed = ystore("restore", path, "--doc", "b.y", "--at", str(T0))
    one_line_error(failed, "b.y")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.y"]  # nothing made beside it
