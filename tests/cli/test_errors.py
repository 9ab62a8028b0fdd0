"""Every operator command fails on a bad TARGET with one line, exit 1, and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import one_line_error, ystore, ystore_process

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/nothing"


def _commands(target: str, tmp_path: Path) -> list[list[str]]:
    update = tmp_path / "update.bin"
    update.write_bytes(b"\x00\x00")
    return [
        ["inspect", target],
        ["ls", target],
        ["verify", target],
        ["export", target, "--doc", "d", "-o", str(tmp_path / "out")],
        ["import", str(update), target, "--doc", "d"],
        ["copy", target, str(tmp_path / "copy")],
    ]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("missing", "There is no file or directory"),
        ("not-a-store", "is not a file store"),
        ("scheme", "URL scheme 'ftp'"),
        ("unreachable", "Could not connect"),
        ("not-a-store-db", "without ystores tables"),
    ],
)
def test_bad_targets(kind: str, expected: str, tmp_path: Path) -> None:
    if kind == "missing":
        target = str(tmp_path / "missing.y")
    elif kind == "not-a-store":
        target = str(tmp_path / "photos")
        Path(target).mkdir()
        (Path(target) / "cat.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a store")
    elif kind == "scheme":
        target = "ftp://example.org/store"
    elif kind == "unreachable":
        target = UNREACHABLE
    else:
        import sqlite3
        from contextlib import closing

        target = str(tmp_path / "app.db")
        with closing(sqlite3.connect(target)) as conn:
            conn.execute("CREATE TABLE users (id INTEGER)")
    for args in _commands(target, tmp_path):
        if kind in ("missing", "not-a-store", "not-a-store-db") and args[0] == "import":
            # import writes: a new path becomes a store, and an application's database
            # gets the ystores tables beside its own (the schema is made for that)
            continue
        one_line_error(ystore(*args), expected)


def test_corrupt_store_file(tmp_path: Path) -> None:
    assert ystore("demo", "--store", str(tmp_path), "--text", "abc").exit_code == 0
    path = tmp_path / "demo"
    data = bytearray(path.read_bytes())
    data[len(b"VERSION:3\n") + 12] ^= 0xFF
    path.write_bytes(bytes(data))
    for args in (
        ["export", str(path), "--doc", "demo", "-o", str(tmp_path / "o")],
        ["copy", str(path), str(tmp_path / "copy")],
    ):
        one_line_error(ystore(*args), "is damaged at byte")
    result = ystore("inspect", str(path))
    assert result.exit_code == 1
    assert "damaged" in result.stdout


def test_debug_shows_the_traceback_and_usage_errors_exit_2(tmp_path: Path) -> None:
    result = ystore_process("--debug", "ls", str(tmp_path / "missing.y"))
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "StoreIOError" in result.stderr
    plain = ystore_process("ls", str(tmp_path / "missing.y"))
    assert plain.returncode == 1
    assert plain.stderr.startswith("Error: There is no file or directory")
    assert "Traceback" not in plain.stderr
    for args in (["export", str(tmp_path)], ["copy", "only-one"], ["ls"], ["verify", "--nope"]):
        assert ystore(*args).exit_code == 2, args
    assert ystore("export", str(tmp_path), "--doc", "d", "--format", "xml").exit_code == 2
