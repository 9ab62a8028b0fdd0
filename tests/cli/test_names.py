"""One rule for names: hostile document names are refused, side files never hide documents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest

from ystores import FileYStore, SQLiteYStore
from ystores.errors import InvalidDocumentNameError
from ystores.names import check_name, validate_name
from ystores.rootdir import walk_root

from .helpers import ystore_process

HOSTILE = [".hidden", "u/.profile", "report.bak-2024", "notes.torn-1", ".a.y.0123abcd.tmp"]
"""Names a client once used to hide documents from `ls` and to get one deleted by `squash`."""


def update(text: str) -> bytes:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.get("text", type=pycrdt.Text).insert(0, text)
    return doc.get_update()


async def fill_sqlite(path: Path, names: list[str]) -> None:
    for name in names:  # the SQL stores hold any name; the file store is the one at risk
        async with SQLiteYStore(name, db_path=str(path)) as store:
            await store.write(update(f"content of {name}"))


async def fill_files(root: Path, names: list[str]) -> None:
    for name in names:
        async with FileYStore(name, root=root) as store:
            await store.write(update(f"content of {name}"))


def listed(target: str) -> list[dict[str, Any]]:
    result = ystore_process("ls", target, "--json")
    assert result.returncode == 0, result.stderr
    entries: list[dict[str, Any]] = json.loads(result.stdout)
    return entries


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_up_front(name: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidDocumentNameError) as info:
        validate_name(name)
    assert name in str(info.value)
    assert check_name(name) == str(info.value)  # the room's 4400 reason
    with pytest.raises(InvalidDocumentNameError):
        FileYStore(name, root=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_names_that_only_look_alike_are_documents(tmp_path: Path) -> None:
    fine = ["notes.tmpl", "a.tmp", "x.torn-", "report.bak", "torn-1", "u/profile", "d.y"]
    for name in fine:
        assert check_name(name) is None, name
    anyio.run(fill_files, tmp_path, fine)
    assert walk_root(tmp_path).documents == sorted(fine)


def test_copy_to_a_file_store_refuses_hostile_names_and_says_so(tmp_path: Path) -> None:
    db = tmp_path / "in.db"
    anyio.run(fill_sqlite, db, ["ok", *HOSTILE])
    out = tmp_path / "out"
    result = ystore_process("copy", str(db), str(out))
    assert result.returncode == 1  # never 0 with documents left behind
    assert result.stderr.count("\n") == 1
    assert "5 of 6 documents not copied" in result.stderr
    for name in HOSTILE:
        assert repr(name) in result.stderr
    assert [d["name"] for d in listed(str(out))] == ["ok"]


def test_copy_of_a_file_store_copies_every_document(tmp_path: Path) -> None:
    root = tmp_path / "root"
    names = ["a.y", "notes.tmpl", "u/profile", "report.bak"]
    anyio.run(fill_files, root, names)
    # Side files of the store and a stray beside the documents.
    (root / "a.y.torn-176").write_bytes(b"\x01\x02")
    (root / ".a.y.0123abcd.tmp").write_bytes((root / "a.y").read_bytes())
    (root / "README.txt").write_text("Notes about this directory.\n")
    result = ystore_process("copy", str(root), f"sqlite:///{tmp_path / 'x.db'}")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("Warning: ") == 1
    assert "README.txt" in result.stderr
    assert sorted(d["name"] for d in listed(str(tmp_path / "x.db"))) == sorted(names)
    assert result.stdout.splitlines()[-1].startswith("Copied 4 of 4 documents")


def test_ls_and_verify_show_side_files_marked(tmp_path: Path) -> None:
    root = tmp_path / "root"
    anyio.run(fill_files, root, ["a.y"])
    (root / "a.y.torn-176").write_bytes(b"\x01\x02")
    (root / "a.y.bak-20260101T000000Z").write_bytes((root / "a.y").read_bytes())
    (root / ".a.y.0123abcd.tmp").write_bytes(b"")
    entries = listed(str(root))
    assert [(e["name"], e.get("side_file")) for e in entries] == [
        ("a.y", None),
        (".a.y.0123abcd.tmp", "temporary"),
        ("a.y.bak-20260101T000000Z", "backup"),
        ("a.y.torn-176", "torn"),
    ]
    table = ystore_process("ls", str(root))
    assert "torn side file" in table.stdout
    verified = ystore_process("verify", str(root))
    assert verified.returncode == 0, verified.stderr
    assert "a.y.torn-176: torn side file of the store" in verified.stdout
    report = json.loads(ystore_process("verify", str(root), "--json").stdout)
    assert report["documents"] == 1
    assert {s["kind"] for s in report["side_files"]} == {"temporary", "backup", "torn"}


def test_squash_never_deletes_a_document(tmp_path: Path) -> None:
    root = tmp_path / "root"
    names = ["a.y", "notes.tmpl", "b.tmp"]
    anyio.run(fill_files, root, names)
    for name in names:  # a second record each, so every document is due
        anyio.run(fill_files, root, [name])
    result = ystore_process("squash", str(root), "--json")
    assert result.returncode == 0, result.stderr
    squashed = sorted(r["doc"] for r in json.loads(result.stdout)["squashed"])
    assert squashed == sorted(names)  # notes.tmpl is squashed, not skipped
    assert sorted(d["name"] for d in listed(str(root))) == sorted(names)
