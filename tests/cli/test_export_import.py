"""`ystore export` and `ystore import` on every backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pycrdt

from .helpers import ok_json, one_line_error, ystore


def _content_of_update(update: bytes) -> dict[str, Any]:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(update)
    return {
        "text": str(doc.get("text", type=pycrdt.Text)),
        "meta": doc.get("meta", type=pycrdt.Map).to_py(),
        "items": doc.get("items", type=pycrdt.Array).to_py(),
    }


def test_export_update_and_json_then_import_them(store: str, tmp_path: Path) -> None:
    expected = ok_json("inspect", store, "--doc", "doc-a", "--content")
    update_file = tmp_path / "doc-a.update"
    result = ystore("export", store, "--doc", "doc-a", "-o", str(update_file))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    values = _content_of_update(update_file.read_bytes())
    assert values == {name: root["value"] for name, root in expected.items()}
    as_json = ystore("export", store, "--doc", "doc-a", "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == expected
    json_file = tmp_path / "doc-a.json"
    json_file.write_text(as_json.stdout)
    # the update appended to a new document of the same store, JSON to another
    assert ystore("import", str(update_file), store, "--doc", "copy/of-a").exit_code == 0
    imported = ok_json("import", str(json_file), store, "--doc", "from-json")
    assert imported == {"document": "from-json", "input": "json", "bytes": json_file.stat().st_size}
    for name in ("copy/of-a", "from-json"):
        assert ok_json("inspect", store, "--doc", name, "--content") == expected
    # an update may be appended again (harmless); JSON content into a document is refused
    assert ystore("import", str(update_file), store, "--doc", "doc-a").exit_code == 0
    assert ok_json("inspect", store, "--doc", "doc-a", "--content") == expected
    one_line_error(ystore("import", str(json_file), store, "--doc", "doc-a"), "already has records")


def test_export_to_stdout_through_a_pipe(legacy_db: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ystores", "export", str(legacy_db), "--doc", "doc-a"],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert _content_of_update(result.stdout)["items"] == [1, "two", {"three": 3}]


def test_import_refuses_what_is_not_an_update(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\xff\xfe not an update")
    one_line_error(
        ystore("import", str(garbage), str(tmp_path / "files"), "--doc", "x"),
        "neither a Yjs v1 update nor JSON",
    )
    xml = tmp_path / "xml.json"
    xml.write_text(json.dumps({"x": {"type": "Y.XmlFragment", "value": "<p></p>"}}))
    one_line_error(ystore("import", str(xml), str(tmp_path / "files"), "--doc", "x"), "XmlFragment")
    assert not (tmp_path / "files" / "x").exists()


def test_import_into_a_legacy_store_names_the_migration(legacy_db: Path, tmp_path: Path) -> None:
    update = tmp_path / "u.bin"
    assert ystore("export", str(legacy_db), "--doc", "doc-a", "-o", str(update)).exit_code == 0
    one_line_error(
        ystore("import", str(update), str(legacy_db), "--doc", "doc-a"), "ystore migrate"
    )


def test_export_unknown_document(legacy_db: Path) -> None:
    one_line_error(ystore("export", str(legacy_db), "--doc", "nope", "-o", "/dev/null"), "'nope'")
