"""A CLI that agrees with itself, tried as a user would: real processes, files and databases."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest

from ystores import FileYStore, SQLiteYStore, open_store

from .helpers import ystore_process

LEGACY_FILE = "ypy-websocket-0.12.4/file-v2/basic.y"


def run(
    *args: str, cwd: Path | None = None, columns: int | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m ystores ARGS` in `cwd`, stdout and stderr captured (so neither is a terminal)."""
    env = dict(os.environ)
    env.pop("FORCE_COLOR", None)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "ystores", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=env,
    )


def one_line(result: subprocess.CompletedProcess[str], code: int, *expected: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stderr.startswith("Error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr


def update(text: str) -> bytes:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.get("text", type=pycrdt.Text).insert(0, text)
    return doc.get_update()


async def fill(url_or_root: Path | str, names: dict[str, str], *, records: int = 1) -> None:
    for name, text in names.items():
        if isinstance(url_or_root, Path):
            store: Any = FileYStore(name, root=url_or_root)
        else:
            store = open_store(url_or_root, name)
        async with store:
            for i in range(records):
                await store.write(update(f"{text} {i}" if records > 1 else text))


def tree(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


# -- arguments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"), [("--max-bytes", "-1"), ("--ttl", "-5"), ("--max-updates", "-3")]
)
def test_negative_policy_numbers_are_one_line_usage_errors(
    option: str, value: str, tmp_path: Path
) -> None:
    result = run("squash", str(tmp_path), option, value)
    one_line(result, 2, option, "greater than or equal to 0")
    assert "ystore squash --help" in result.stderr


@pytest.mark.parametrize("command", ["ls", "inspect", "verify", "squash", "migrate"])
def test_a_port_out_of_range_is_one_line(command: str) -> None:
    result = run(command, "postgresql://postgres@127.0.0.1:99999/test")
    one_line(result, 1, "99999", "1 to 65535")


def test_version_and_help_without_artefacts() -> None:
    version = run("--version")
    assert version.returncode == 0
    assert re.fullmatch(r"ystore \(ystores\) \S+\n", version.stdout)
    for command in ("", "demo", "inspect", "ls", "verify", "export", "import", "copy",
                    "squash", "migrate", "serve"):  # fmt: skip
        shown = run(*([command] if command else []), "--help", columns=80)
        assert shown.returncode == 0, shown.stderr
        assert not re.search(r"<(bool|str|int|float|path)[a-z ]*>", shown.stdout), shown.stdout
        assert not re.search(r"\{[a-z_]+\}", shown.stdout, re.IGNORECASE), shown.stdout


# -- one resolver ----------------------------------------------------------------------


def test_every_way_of_naming_a_store_names_the_same_one(tmp_path: Path) -> None:
    anyio.run(fill, tmp_path / "data", {"a": "one", "b/c": "two"})
    ways = ["data", "data/", f"file://{tmp_path}/data/", "file:data/", f"{tmp_path}/data"]
    for way in ways:
        result = run("ls", way, "--json", cwd=tmp_path)
        assert result.returncode == 0, (way, result.stderr)
        assert [d["name"] for d in json.loads(result.stdout)] == ["a", "b/c"], way
    anyio.run(fill, f"sqlite:///{tmp_path}/s.db", {"x": "three"})
    for way in ("s.db", "sqlite:///s.db", f"sqlite:///{tmp_path}/s.db"):
        result = run("ls", way, "--json", cwd=tmp_path)
        assert [d["name"] for d in json.loads(result.stdout)] == ["x"], way
    host = run("ls", "file://data/", cwd=tmp_path)
    one_line(host, 1, "names the host 'data'", "file:data/")


def test_demo_and_the_room_demo_meet(tmp_path: Path) -> None:
    result = run("demo", "--store", "data", "--text", "shared", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "demo").is_file()
    # `ystore serve --store data/` opens a room's store with the same resolver.
    store = open_store(f"{tmp_path}/data/", "demo")
    assert isinstance(store, FileYStore)
    assert store.file_path == (tmp_path / "data" / "demo").resolve()
    content = run("inspect", "data", "--doc", "demo", "--content", "--json", cwd=tmp_path)
    assert json.loads(content.stdout)["text"]["value"] == "shared"
    as_json = run("demo", "--store", "s.db", "--text", "abc", "--json", cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["document"] == "demo"
    assert report["text"] == "abc"


# -- commands that read never create ------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["squash", "typo.db"],
        ["migrate", "nosuch.db"],
        ["ls", "nosuch.db"],
        ["inspect", "nosuch.db"],
        ["verify", "nosuch.db"],
        ["export", "nosuch.db", "--doc", "a", "-o", "out.update"],
        ["copy", "nosuch.db", "out/"],
        ["squash", "sqlite:///typo.db"],
    ],
)
def test_reading_commands_create_nothing(args: list[str], tmp_path: Path) -> None:
    result = run(*args, cwd=tmp_path)
    one_line(result, 1, "There is no SQLite database at")
    assert tree(tmp_path) == []


def test_ls_lists_only_documents(tmp_path: Path) -> None:
    anyio.run(fill, tmp_path, {"notes": "text"})
    anyio.run(fill, f"sqlite:///{tmp_path}/ystore.db", {"x": "in the database"})
    (tmp_path / "r1.json").write_text('{"a": 1}\n')
    result = run("ls", ".", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [d["name"] for d in json.loads(result.stdout)] == ["notes"]
    assert result.stderr.count("\n") == 1
    assert "Warning: Skipped 2 files" in result.stderr
    assert "r1.json" in result.stderr
    assert "ystore.db" in result.stderr
    passwd = run("ls", "/etc/passwd")
    one_line(passwd, 1, "is not a store file")


# -- directories: side files and strays ------------------------------------------------------


def test_migrate_dir_skips_side_files_and_strays_with_one_warning_each(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    anyio.run(fill, root, {"current": "v3", "notes.tmpl": "a document"})
    shutil.copy(fixtures_dir / LEGACY_FILE, root / "old.y")
    (root / "old.y").chmod(0o644)
    (root / "a.y.torn-176").write_bytes(b"\x05\x01")
    (root / "README.txt").write_text("What this directory is.\n")
    result = run("migrate", str(root))
    assert result.returncode == 0, result.stderr
    warnings = result.stderr.splitlines()
    assert len(warnings) == 2, warnings
    assert "a.y.torn-176" in warnings[0]
    assert "README.txt" in warnings[1]
    assert result.stdout.splitlines() == [
        f"{root / 'old.y'} upgraded from version 2 to version 4.",
        f"Upgraded 1 of 3 files of {root} to version 4; 2 already current.",
    ]
    assert (root / "a.y.torn-176").read_bytes() == b"\x05\x01"
    again = run("migrate", str(root), "--json")
    files = json.loads(again.stdout)["files"]
    assert {f["action"] for f in files} == {"current"}


def test_migrate_of_many_current_files_prints_one_line(tmp_path: Path) -> None:
    anyio.run(fill, tmp_path / "big", {f"doc{i:03}": "x" for i in range(40)})
    result = run("migrate", str(tmp_path / "big"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"Nothing to migrate: the 40 files of {tmp_path / 'big'} are current."
    ]
    assert result.stderr == ""  # no progress bar when stderr is not a terminal


def test_migrate_one_file_reports_once(fixtures_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "old.y"
    shutil.copy(fixtures_dir / LEGACY_FILE, path)
    path.chmod(0o644)
    result = run("migrate", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{path} upgraded from version 2 to version 4.\n"
    assert result.stderr == ""


def test_migrate_json_prints_json_for_databases_too(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    anyio.run(fill, f"sqlite:///{db}", {"x": "y"})
    result = run("migrate", str(db), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["action"] == "unchanged"


def test_squash_dir_skips_a_stray_with_one_warning_and_sums_up(tmp_path: Path) -> None:
    root = tmp_path / "root"
    anyio.run(lambda: fill(root, {"a": "x", "notes.tmpl": "y"}, records=3))
    (root / "README.txt").write_text("Not a store file.\n")
    result = run("squash", str(root))
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("\n") == 1
    assert "README.txt" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("squashed a: 3 records -> 1")
    assert lines[1].startswith("squashed notes.tmpl: 3 records -> 1")
    assert lines[2].startswith("Squashed 2 of 2 documents")
    again = run("squash", str(root))
    assert again.stdout.splitlines() == [
        f"Nothing to squash: none of the 2 documents of {root} is due."
    ]


def test_copy_that_fails_creates_no_output(tmp_path: Path) -> None:
    strays = tmp_path / "strays"
    strays.mkdir()
    (strays / "README.txt").write_text("Not a store.\n")
    result = run("copy", str(strays), str(tmp_path / "out"))
    one_line(result, 1, "is not a file store")
    assert not (tmp_path / "out").exists()


def test_copy_prints_one_line_per_document_then_a_summary(tmp_path: Path) -> None:
    anyio.run(fill, tmp_path / "src", {"a": "x", "b": "y"})
    first = run("copy", str(tmp_path / "src"), str(tmp_path / "out.db"))
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "copied a: 1 records",
        "copied b: 1 records",
        f"Copied 2 of 2 documents (2 records) to {tmp_path / 'out.db'}.",
    ]
    again = run("copy", str(tmp_path / "src"), str(tmp_path / "out.db"))
    assert again.stdout.splitlines() == [
        f"Nothing to copy: the 2 documents of {tmp_path / 'src'} are already in "
        f"{tmp_path / 'out.db'}."
    ]


# -- --json ------------------------------------------------------------------------------


def test_every_command_that_outputs_data_takes_json(tmp_path: Path) -> None:
    anyio.run(fill, tmp_path / "d", {"a": "hello"})
    store = str(tmp_path / "d")
    update_file = tmp_path / "a.update"
    assert run("export", store, "--doc", "a", "-o", str(update_file)).returncode == 0
    commands = [
        ["inspect", store],
        ["ls", store],
        ["verify", store],
        ["export", store, "--doc", "a"],
        ["import", str(update_file), store, "--doc", "b"],
        ["copy", store, str(tmp_path / "c.db")],
        ["squash", store],
        ["migrate", store],
        ["demo", "--store", str(tmp_path / "demo")],
    ]
    for args in commands:
        result = run(*args, "--json")
        assert result.returncode == 0, (args, result.stderr)
        json.loads(result.stdout)  # the whole output is JSON
    exported = json.loads(run("export", store, "--doc", "a", "--json").stdout)
    assert exported["text"]["value"] == "hello"


# -- rendering -----------------------------------------------------------------------------


def test_tables_fit_80_columns_and_never_cut_headers(tmp_path: Path) -> None:
    names = {
        "notebooks/2026/quarterly-report-final-version.ipynb": "a",
        "json:notebook:0b2c7f0e-6f1a-4d3b-9a57-3f0f2f6c9e11": "b",
        "short": "c",
    }
    anyio.run(fill, tmp_path / "d", names)
    store = str(tmp_path / "d")
    for args, headers in (
        (["ls", store], ["document", "records", "bytes", "health"]),
        (["inspect", store], ["document", "records", "bytes", "last", "write", "health"]),
        (["inspect", store, "--doc", "short", "--records"], ["seq", "kind", "size"]),
    ):
        result = run(*args, columns=80)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert max(len(line) for line in lines) <= 80, result.stdout
        words = set(re.findall(r"[a-z:]+", result.stdout))
        for header in headers:
            assert header in words, (header, result.stdout)
        for cut in ("documen", "snapsh", "recor"):
            assert cut not in words, result.stdout


def test_inspect_content_is_never_wrapped_when_redirected(tmp_path: Path) -> None:
    text = "A long line of text that a terminal of 80 columns would have wrapped. " * 4
    anyio.run(fill, tmp_path / "d", {"long": text.strip()})
    output = tmp_path / "content.txt"
    with output.open("w") as stdout:
        result = subprocess.run(
            [sys.executable, "-m", "ystores", "inspect", str(tmp_path / "d"), "--content"],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            env={**os.environ, "COLUMNS": "80"},
        )
    assert result.returncode == 0, result.stderr
    assert output.read_text().splitlines() == ["text (Y.Text)", text.strip()]


def test_a_sqlite_store_and_sqlite_ystore_agree(tmp_path: Path) -> None:
    async def write() -> None:
        async with SQLiteYStore("doc", db_path=str(tmp_path / "x.sqlite")) as store:
            await store.write(update("z"))

    anyio.run(write)
    result = ystore_process("ls", str(tmp_path / "x.sqlite"), "--json")
    assert [d["name"] for d in json.loads(result.stdout)] == ["doc"]
