"""`ystore verify`: exit codes, the problems listed, and `--repair` of a torn tail."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from .helpers import copy_fixture, manifest, ok_json, one_line_error, ystore, ystore_process


def test_every_backend_and_fixture_verifies_healthy(
    store: str, fixtures_dir: Path, tmp_path: Path
) -> None:
    report = ok_json("verify", store)
    assert report["healthy"] is True
    assert report["documents"] == 4
    assert report["records"] == 51
    assert report["problems"] == []
    quiet = ystore("verify", store)
    assert quiet.exit_code == 0
    assert "no problem" in quiet.stdout
    for entry in manifest(fixtures_dir):
        path = copy_fixture(fixtures_dir, entry["file"], tmp_path / entry["file"].split("/")[0])
        result = ystore("verify", str(path))
        assert result.exit_code == 0, (entry["file"], result.output)


def _store_file(tmp_path: Path) -> Path:
    assert ystore("demo", "--store", str(tmp_path / "files"), "--text", "abcd").exit_code == 0
    return tmp_path / "files" / "demo"


def test_torn_tail_fails_then_repair_cuts_it_after_a_backup(tmp_path: Path) -> None:
    path = _store_file(tmp_path)
    whole = path.read_bytes()
    path.write_bytes(whole + b"\x40\x00\x00\x00torn")
    result = ystore("verify", str(tmp_path / "files"))
    assert result.exit_code == 1
    assert "demo: torn-tail:" in result.stderr
    assert "--repair" in result.stderr
    assert path.read_bytes() == whole + b"\x40\x00\x00\x00torn"  # verify alone changes nothing
    repaired = ok_json("verify", str(tmp_path / "files"), "--repair")
    (repair,) = repaired["repairs"]
    assert repair["offset"] == len(whole)
    assert repair["removed"] == 8
    assert repaired["healthy"] is True
    assert path.read_bytes() == whole
    assert Path(repair["backup"]).read_bytes() == whole + b"\x40\x00\x00\x00torn"
    assert ystore("verify", str(tmp_path / "files")).exit_code == 0  # the backup is not a doc
    content = ok_json("inspect", str(path), "--content")
    assert content == {"text": {"type": "Y.Text", "value": "abcd"}}


def test_damage_in_the_middle_is_reported_then_cut_after_a_backup(tmp_path: Path) -> None:
    path = _store_file(tmp_path)
    data = bytearray(path.read_bytes())
    first_frame = len(b"VERSION:3\n") + 8 + int.from_bytes(data[10:14], "little")
    data[len(b"VERSION:3\n") + 12] ^= 0xFF  # inside the first record's body
    path.write_bytes(bytes(data))
    result = ystore_process("verify", str(path))
    assert result.returncode == 1
    assert "demo: damaged:" in result.stderr
    assert "Traceback" not in result.stderr
    assert path.read_bytes() == bytes(data)
    repaired = ystore("verify", str(path), "--repair", "--json")
    assert repaired.exit_code == 0, repaired.output
    report = json.loads(repaired.stdout)
    (repair,) = report["repairs"]
    assert repair["kind"] == "damaged"
    assert repair["offset"] == len(b"VERSION:3\n")
    assert repair["removed"] == first_frame - len(b"VERSION:3\n")
    assert report["remaining"] == []
    assert Path(repair["backup"]).read_bytes() == bytes(data)
    (doc,) = ok_json("inspect", str(path))["documents"]
    assert doc["records"] == 3  # the damaged first keystroke is gone, the others kept
    assert [
        r["seq"] for r in ok_json("inspect", str(path), "--records")["documents"][0]["record_list"]
    ] == [2, 3, 4]
    assert ystore("verify", str(path)).exit_code == 0


def test_undecodable_update_in_a_legacy_database(legacy_db: Path) -> None:
    with closing(sqlite3.connect(legacy_db)) as conn:
        conn.execute(
            "UPDATE yupdates SET yupdate = x'ffffffff' WHERE rowid = "
            "(SELECT min(rowid) FROM yupdates WHERE path = 'doc-a')"
        )
        conn.commit()
    result = ystore("verify", str(legacy_db), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["healthy"] is False
    assert [(p["document"], p["kind"]) for p in report["problems"]] == [("doc-a", "undecodable")]
    assert "seqs 1" in report["problems"][0]["message"]


def test_missing_target_is_one_line(tmp_path: Path) -> None:
    one_line_error(ystore("verify", str(tmp_path / "missing.y")), "missing.y")
