"""The operator commands as real subprocesses (`python -m ystores ...`)."""

from __future__ import annotations

import json
from pathlib import Path

from .helpers import ystore_process


def test_every_command_as_a_subprocess(store: str, tmp_path: Path) -> None:
    listed = ystore_process("ls", store, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [d["records"] for d in json.loads(listed.stdout)] == [8, 8, 5, 30]
    report = ystore_process("inspect", store, "--doc", "doc-a", "--records", "--json")
    assert report.returncode == 0, report.stderr
    assert len(json.loads(report.stdout)["documents"][0]["record_list"]) == 8
    if not store.startswith("postgresql"):
        return  # the other backends run every command in-process; one is enough here
    verified = ystore_process("verify", store)
    assert verified.returncode == 0, verified.stderr
    update = tmp_path / "a.update"
    exported = ystore_process("export", store, "--doc", "doc-a", "-o", str(update))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout == ""
    imported = ystore_process("import", str(update), store, "--doc", "restored")
    assert imported.returncode == 0, imported.stderr
    content = ystore_process("inspect", store, "--doc", "restored", "--content", "--json")
    assert json.loads(content.stdout)["text"]["value"].startswith("Hello, new world!")
    copied = ystore_process("copy", store, str(tmp_path / "files"))
    assert copied.returncode == 0, copied.stderr
    assert copied.stdout.splitlines()[-1].startswith("Copied 5 of 5 documents")
    assert (tmp_path / "files" / "restored").is_file()
