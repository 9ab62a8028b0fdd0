"""Merging a log into one update (the heart of compaction) and reading update structure."""

from __future__ import annotations

from typing import Any

import pycrdt
import pytest
import y_py as Y
from hypothesis import given, settings
from hypothesis import strategies as st

from ydocs import typing_updates
from ystores import InvalidUpdateError
from ystores.crdt import apply_updates, merge_updates
from ystores.yupdate import decode_state_vector, parse_update

# An edit: (client index, operation, position seed, text)
edits = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.sampled_from(["insert", "delete", "map", "array", "array-delete", "format"]),
        st.integers(0, 10_000),
        st.text(alphabet="abcdefgh XYZ", min_size=1, max_size=4),
    ),
    min_size=1,
    max_size=40,
)


def content(doc: pycrdt.Doc[Any]) -> dict[str, Any]:
    return {
        "text": doc.get("text", type=pycrdt.Text).diff(),
        "map": doc.get("map", type=pycrdt.Map).to_py(),
        "array": doc.get("array", type=pycrdt.Array).to_py(),
    }


def history(steps: list[tuple[int, str, int, str]]) -> tuple[list[bytes], pycrdt.Doc[Any]]:
    """Several clients editing, syncing after every step; the log of every update."""
    docs: list[pycrdt.Doc[Any]] = [pycrdt.Doc(client_id=100 + i) for i in range(3)]
    log: list[bytes] = []
    for who, op, seed, text in steps:
        doc = docs[who]
        before = doc.get_state()
        body = doc.get("text", type=pycrdt.Text)
        items = doc.get("array", type=pycrdt.Array)
        if op == "insert":
            body.insert(seed % (len(body) + 1), text)
        elif op == "delete" and len(body):
            start = seed % len(body)
            del body[start : min(len(body), start + len(text))]
        elif op == "map":
            doc.get("map", type=pycrdt.Map)[text] = seed
        elif op == "array":
            items.insert(seed % (len(items) + 1), text)
        elif op == "array-delete" and len(items):
            del items[seed % len(items)]
        elif op == "format" and len(body):
            body.format(seed % len(body), len(body), {"bold": seed % 2 == 0})
        update = doc.get_update(before)
        log.append(update)
        for other in docs:
            other.apply_update(update)
    return log, docs[0]


@settings(max_examples=60, deadline=None)
@given(edits)
def test_merged_update_gives_exactly_the_same_document(steps: list[Any]) -> None:
    log, reference = history(steps)
    merged = merge_updates(log)
    restored: pycrdt.Doc[Any] = pycrdt.Doc()
    restored.apply_update(merged)
    assert content(restored) == content(reference)
    assert decode_state_vector(restored.get_state()) == decode_state_vector(reference.get_state())


@settings(max_examples=60, deadline=None)
@given(edits)
def test_structure_of_each_update_adds_up_to_the_state_vector(steps: list[Any]) -> None:
    log, reference = history(steps)
    ends: dict[int, int] = {}
    for update in log:
        for client, spans in parse_update(update).structs.items():
            for start, end in spans:
                assert start == ends.get(client, 0)  # each client's clocks are contiguous
                ends[client] = end
    assert ends == {c: k for c, k in decode_state_vector(reference.get_state()).items() if k}


def test_an_update_held_back_by_the_engine_is_kept_in_the_merge() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("text", type=pycrdt.Text)
    log: list[bytes] = []
    doc.observe(lambda event: log.append(event.update))
    text += "hello"
    text += " world"
    del text[0:1]
    merged = merge_updates(log[1:])  # the first update is missing: the rest depend on it
    restored: pycrdt.Doc[Any] = pycrdt.Doc()
    restored.apply_update(merged)
    restored.apply_update(log[0])  # the missing update arrives later
    assert str(restored.get("text", type=pycrdt.Text)) == "ello world"


def test_every_content_type_is_parsed() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=5)
    text = doc.get("t", type=pycrdt.Text)
    text += "héllo 🚀"  # 8 UTF-16 units
    text.format(0, 2, {"bold": True})
    text.insert_embed(1, {"image": "x.png"})
    doc.get("m", type=pycrdt.Map)["k"] = {"x": [1, 2.5, None, True, "s"], "b": b"\x00\x01"}
    doc.get("a", type=pycrdt.Array).append(pycrdt.Doc())
    fragment = doc.get("x", type=pycrdt.XmlFragment)
    fragment.children.append(pycrdt.XmlElement("p", {"a": "b"}, [pycrdt.XmlText("hi")]))
    del text[0:2]
    structure = parse_update(doc.get_update())
    assert structure.structs == {5: [(0, decode_state_vector(doc.get_state())[5])]}
    assert structure.deletes == {5: [(0, 1), (10, 11)]}


@pytest.mark.parametrize("garbage", [b"\x05", b"\x01\x01\x05\x00\xff", b"\x00\x00\x07"])
def test_malformed_updates_are_refused(garbage: bytes) -> None:
    with pytest.raises(ValueError, match=r"Yjs v1 update|bytes follow"):
        parse_update(garbage)


@settings(max_examples=60, deadline=None)
@given(edits, st.randoms(use_true_random=False))
def test_applying_a_log_in_one_transaction_equals_applying_it_update_by_update(
    steps: list[Any], rnd: Any
) -> None:
    """`crdt.apply_updates` (restore's fast path) applies a batch in one
    transaction: in write order or any other (a log may hold updates whose
    dependencies come later), both engines end exactly as when each update is
    applied on its own."""
    log, reference = history(steps)
    shuffled = list(log)
    rnd.shuffle(shuffled)
    for updates in (log, shuffled):
        one_by_one: pycrdt.Doc[Any] = pycrdt.Doc()
        y_one_by_one = Y.YDoc()
        for update in updates:
            one_by_one.apply_update(update)
            Y.apply_update(y_one_by_one, update)
        batched: pycrdt.Doc[Any] = pycrdt.Doc()
        apply_updates(batched, updates)
        assert content(batched) == content(one_by_one)
        assert batched.get_state() == one_by_one.get_state()
        assert batched.get_update() == one_by_one.get_update()
        y_batched = Y.YDoc()
        apply_updates(y_batched, updates)
        assert Y.encode_state_as_update(y_batched) == Y.encode_state_as_update(y_one_by_one)
    batched = pycrdt.Doc()
    apply_updates(batched, log)
    assert content(batched) == content(reference)


def test_a_bad_update_in_a_batch_is_reported_and_the_updates_before_it_are_applied() -> None:
    log = typing_updates("x" * 60)
    bad = [*log[:35], b"\x05garbage", *log[35:]]
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    with pytest.raises(InvalidUpdateError, match="could not be applied"):
        apply_updates(doc, bad)
    assert str(doc.get("t", type=pycrdt.Text)) == "x" * 35


def test_a_batch_reaches_observers_as_one_transaction_with_every_update() -> None:
    """pycrdt documents take the engine's own apply inside the batch's transaction:
    observers still see one transaction, and its update holds the whole batch."""
    log = typing_updates("hello world")
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    seen: list[bytes] = []
    doc.observe(lambda event: seen.append(event.update))
    apply_updates(doc, log)
    assert str(doc.get("t", type=pycrdt.Text)) == "hello world"
    assert len(seen) == 1
    copy: pycrdt.Doc[Any] = pycrdt.Doc()
    copy.apply_update(seen[0])
    assert str(copy.get("t", type=pycrdt.Text)) == "hello world"


def test_a_batch_joins_the_callers_open_transaction() -> None:
    log = typing_updates("abc")
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("t", type=pycrdt.Text)
    seen: list[bytes] = []
    doc.observe(lambda event: seen.append(event.update))
    with doc.transaction():
        apply_updates(doc, log)
        text += "!"
        apply_updates(doc, [])  # an empty batch in an open transaction changes nothing
    assert str(text) == "abc!"
    assert len(seen) == 1
    apply_updates(doc, log)  # again, after the transaction closed: idempotent
    assert str(text) == "abc!"


def test_a_batch_applied_from_an_observer_is_refused_and_the_document_is_unharmed() -> None:
    """Inside an observer the document is in a read-only transaction: the batch is
    refused with InvalidUpdateError (as pycrdt refuses a single update there)."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("t", type=pycrdt.Text)
    errors: list[BaseException] = []

    def observer(_event: Any) -> None:
        try:
            apply_updates(doc, typing_updates("zz"))
        except InvalidUpdateError as exc:
            errors.append(exc)

    doc.observe(observer)
    text += "x"
    assert len(errors) == 1
    assert "#1" in str(errors[0])
    assert str(text) == "x"
