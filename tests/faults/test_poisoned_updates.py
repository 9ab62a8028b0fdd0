"""The CRDT engine is untrusted: a poisoned update never escapes as a panic (issue 11, case 1)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest

from backends import StoreFactory
from cli.helpers import one_line_error, ystore
from ystores import FileYStore, InvalidUpdateError, crdt
from ystores.sql import SQLiteYStore

from .poison import ISSUE_UPDATE, POISON, text_of, victim_state


def test_the_poison_really_panics_the_engine() -> None:
    """The fixture is what it claims: raw pycrdt raises a BaseException that is no Exception."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(victim_state())
    with pytest.raises(BaseException, match="unwrap") as caught:
        doc.apply_update(POISON)
    assert not isinstance(caught.value, Exception)
    assert type(caught.value).__name__ == "PanicException"


def test_a_panic_becomes_invalid_update_error_and_the_document_survives() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    crdt.apply_update(doc, victim_state())
    with pytest.raises(InvalidUpdateError, match="panicked"):
        crdt.apply_update(doc, POISON)
    text = doc.get("text", type=pycrdt.Text)
    text += "!"
    assert str(text) == "x" * 60 + "!"
    with pytest.raises(InvalidUpdateError, match="#2"):
        crdt.apply_updates(pycrdt.Doc(), [victim_state(), POISON])
    with pytest.raises(InvalidUpdateError, match="#2"):
        crdt.merge_updates([victim_state(), POISON])


def test_interrupts_are_never_swallowed() -> None:
    def interrupted() -> None:
        with crdt.engine_call("never"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()


def test_the_issue_update_is_harmless_everywhere(tmp_path: Path) -> None:
    """The issue's 15 bytes: validated against a scratch document at write; whatever the
    engine makes of them, no panic reaches a caller and the store stays usable."""
    for context in (b"", victim_state()):
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        if context:
            crdt.apply_update(doc, context)
        with contextlib.suppress(InvalidUpdateError):
            crdt.apply_update(doc, ISSUE_UPDATE)


@pytest.mark.anyio
async def test_stored_poison_is_one_documents_load_error(make_store: StoreFactory) -> None:
    """write() accepts POISON (it fails only against content); loading that document fails
    with InvalidUpdateError, and other documents of the same store load."""
    async with make_store("poisoned") as poisoned, make_store("healthy") as healthy:
        await poisoned.write(victim_state())
        await poisoned.write(POISON)
        await healthy.write(victim_state("fine"))
        with pytest.raises(InvalidUpdateError, match="panicked"):
            await poisoned.apply_updates(pycrdt.Doc())
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        await healthy.apply_updates(doc)
        assert str(doc.get("text", type=pycrdt.Text)) == "fine"
        with pytest.raises(InvalidUpdateError):
            await poisoned.apply_updates(pycrdt.Doc())  # and again: the store is not wedged


@pytest.mark.anyio
async def test_write_refuses_what_fails_on_an_empty_document(tmp_path: Path) -> None:
    """validate_update applies to a scratch document: what cannot even be applied alone
    is refused at write() and nothing is stored."""
    async with FileYStore(str(tmp_path / "a.y")) as store:
        with pytest.raises(InvalidUpdateError, match="nothing was written"):
            await store.write(b"\x01\x01\x05\x00\xff")
        await store.write(victim_state())
        assert [u async for u, _m, _t in store.read()] == [victim_state()]


def _poisoned_directory(root: Path) -> None:
    anyio.run(_write_poisoned_directory, root)


async def _write_poisoned_directory(root: Path) -> None:
    async with FileYStore("bad", root=root) as bad, FileYStore("good", root=root) as good:
        await bad.write(victim_state())
        await bad.write(POISON)
        await good.write(victim_state("good"))


def test_verify_reports_stored_poison(tmp_path: Path) -> None:
    _poisoned_directory(tmp_path)
    result = ystore("verify", str(tmp_path))
    assert result.exit_code == 1, result.output
    assert "unappliable" in result.output or "engine fails" in result.output, result.output
    assert "seqs 2" in result.output, result.output
    assert "Traceback" not in result.output


def test_export_and_inspect_name_the_poisoned_record(tmp_path: Path) -> None:
    _poisoned_directory(tmp_path)
    one_line_error(
        ystore("export", str(tmp_path), "--doc", "bad", "-o", str(tmp_path / "o")), "seq 2", "bad"
    )
    one_line_error(ystore("inspect", str(tmp_path), "--doc", "bad", "--content"), "seq 2")
    good = ystore("export", str(tmp_path), "--doc", "good", "-o", str(tmp_path / "g.bin"))
    assert good.exit_code == 0, good.output
    assert text_of((tmp_path / "g.bin").read_bytes()) == "good"


def test_sqlite_export_names_the_poisoned_record(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")

    async def write() -> None:
        async with SQLiteYStore("bad", db_path=path) as bad:
            await bad.write(victim_state())
            await bad.write(POISON)

    anyio.run(write)
    one_line_error(ystore("export", path, "--doc", "bad", "-o", str(tmp_path / "o")), "seq 2")
    result = ystore("verify", path)
    assert result.exit_code == 1, result.output
    assert "seqs 2" in result.output, result.output


@pytest.mark.parametrize(
    "command",
    [["export", "--doc", "bad", "-o", "out.bin"], ["inspect", "--doc", "bad", "--content"]],
    ids=["export", "inspect-content"],
)
def test_the_command_prints_one_line_not_the_engines_backtrace(
    tmp_path: Path, command: list[str]
) -> None:
    """The engine prints its panic (and a Rust backtrace with RUST_BACKTRACE=1) on fd 2
    itself; `ystore` keeps that off its stderr: one line of error, exit 1."""
    _poisoned_directory(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "ystores", command[0], str(tmp_path), *command[1:]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "RUST_BACKTRACE": "1"},
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("Error: "), result.stderr
    assert "seq 2" in result.stderr
    assert "backtrace" not in result.stderr


def test_import_refuses_an_update_that_fails_against_the_content(tmp_path: Path) -> None:
    """`ystore import` checks the update against the document it joins: the poison that
    passes a scratch check is refused there, and nothing is written."""
    store = tmp_path / "store"

    async def seed() -> None:
        async with FileYStore("doc", root=store) as victim:
            await victim.write(victim_state())

    anyio.run(seed)
    before = (store / "doc").read_bytes()
    (tmp_path / "poison.bin").write_bytes(POISON)
    one_line_error(
        ystore("import", str(tmp_path / "poison.bin"), str(store), "--doc", "doc"),
        "nothing was written",
    )
    assert (store / "doc").read_bytes() == before
    fresh = ystore("import", str(tmp_path / "poison.bin"), str(store), "--doc", "new")
    assert fresh.exit_code == 0, fresh.output  # alone it is a valid (pending) update
