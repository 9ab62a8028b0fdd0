"""The revert update: after it, every root's content is the old one; others' edits still merge."""

from __future__ import annotations

from typing import Any

import pycrdt
from hypothesis import given, settings
from hypothesis import strategies as st

from ystores.history.revert import revert_update
from ystores.operations.roots import infer_root_types

ROOTS = {"text": pycrdt.Text, "map": pycrdt.Map, "list": pycrdt.Array, "xml": pycrdt.XmlFragment}
WORDS = st.text(alphabet="ab é😀\n", min_size=1, max_size=6)
SCALARS = st.one_of(st.integers(-5, 5), st.booleans(), WORDS, st.none())


def attributes(value: Any) -> dict[str, Any]:
    found: Any = value.attributes  # pycrdt types its iterator as a plain Iterable
    return dict(found)


def keys(value: Any) -> list[str]:
    found: Any = value.keys()
    return list(found)


def shape(value: Any) -> Any:
    """A value's content, shared types included (formatting of text too)."""
    if isinstance(value, pycrdt.XmlText):
        return ["XmlText", attributes(value), [list(c) for c in value.diff()]]
    if isinstance(value, pycrdt.Text):
        return ["Text", [list(c) for c in value.diff()]]
    if isinstance(value, pycrdt.Map):
        return ["Map", {k: shape(value[k]) for k in keys(value)}]
    if isinstance(value, pycrdt.Array):
        return ["Array", [shape(v) for v in value]]
    if isinstance(value, pycrdt.XmlElement):
        return [
            "El",
            value.tag,
            attributes(value),
            [shape(c) for c in value.children],
        ]
    if isinstance(value, pycrdt.XmlFragment):
        return ["Frag", [shape(c) for c in value.children]]
    return ["v", type(value).__name__, value]


def content(update: bytes) -> dict[str, Any]:
    """Every non-empty root's content, by name (an emptied root equals a missing one)."""
    doc = load(update)
    kinds = infer_root_types(update)
    found = {}
    for name, cls in ROOTS.items():
        if name in kinds:
            root = doc.get(name, type=cls)
            if len(root.children if isinstance(root, pycrdt.XmlFragment) else root):
                found[name] = shape(root)
    return found


def load(update: bytes) -> pycrdt.Doc[Any]:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(update)
    return doc


@st.composite
def nested(draw: st.DrawFn, depth: int = 0) -> Any:
    """A value to store in a map or a list: a scalar or (not too deep) a shared type."""
    choice = draw(st.integers(0, 5 if depth < 2 else 0))
    if choice <= 2:
        return draw(SCALARS)
    if choice == 3:
        return pycrdt.Text(draw(WORDS))
    if choice == 4:
        keys = draw(st.lists(st.sampled_from("pqr"), max_size=2, unique=True))
        return pycrdt.Map({k: draw(nested(depth + 1)) for k in keys})
    return pycrdt.Array([draw(nested(depth + 1)) for _ in range(draw(st.integers(0, 2)))])


@st.composite
def edit(draw: st.DrawFn) -> Any:
    """One edit, as a function of a document (indices drawn as fractions of lengths)."""
    kind = draw(st.sampled_from(["text", "text_del", "bold", "map", "map_del", "list",
                                 "list_del", "nested", "xml", "xml_attr", "xml_del"]))  # fmt: skip
    word = draw(WORDS)
    where = draw(st.floats(0, 1))
    key = draw(st.sampled_from("abc"))
    value = draw(nested())

    def apply(doc: pycrdt.Doc[Any]) -> None:
        text = doc.get("text", type=pycrdt.Text)
        mapping = doc.get("map", type=pycrdt.Map)
        items = doc.get("list", type=pycrdt.Array)
        xml = doc.get("xml", type=pycrdt.XmlFragment)
        chars = str(text)
        cut = int(where * len(chars))
        offset = len(chars[:cut].encode())
        if kind == "text":
            text.insert(offset, word)
        elif kind == "text_del" and chars:
            end = offset + len(chars[cut : cut + 2].encode())
            del text[offset:end]
        elif kind == "bold" and chars:
            end = offset + len(chars[cut : cut + 3].encode())
            text.format(offset, end, {"bold": True})
        elif kind == "map":
            mapping[key] = value
        elif kind == "map_del" and key in mapping:
            del mapping[key]
        elif kind == "list":
            items.insert(int(where * len(items)), value)
        elif kind == "list_del" and len(items):
            del items[min(int(where * len(items)), len(items) - 1)]
        elif kind == "nested":
            for holder in [*(mapping[k] for k in keys(mapping)), *items]:
                if isinstance(holder, pycrdt.Text):
                    holder.insert(0, word)
                    break
                if isinstance(holder, pycrdt.Map):
                    holder[key] = value
                    break
        elif kind == "xml":
            element = pycrdt.XmlElement("p", {"k": key}, [pycrdt.XmlText(word)])
            xml.children.insert(int(where * len(xml.children)), element)
        elif kind == "xml_attr" and len(xml.children):
            child = xml.children[min(int(where * len(xml.children)), len(xml.children) - 1)]
            child.attributes["k"] = word
        elif kind == "xml_del" and len(xml.children):
            del xml.children[min(int(where * len(xml.children)), len(xml.children) - 1)]

    return apply


def edited(doc: pycrdt.Doc[Any], edits: list[Any], log: list[bytes] | None = None) -> bytes:
    """Apply the edits, one transaction each (their updates appended to `log`); the state."""
    for change in edits:
        before = doc.get_state()
        with doc.transaction():
            change(doc)
        if log is not None:
            log.append(doc.get_update(before))
    return doc.get_update()


EDITS = st.lists(edit(), max_size=12)


@settings(max_examples=80, deadline=None)
@given(before=EDITS, after=EDITS)
def test_reverting_gives_the_old_content(before: list[Any], after: list[Any]) -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    records: list[bytes] = []
    old = edited(doc, before, records)
    current = edited(doc, after, records)
    update = revert_update(current, old)
    if update is None:
        assert content(current) == content(old)
        return
    doc.apply_update(update)
    assert content(doc.get_update()) == content(old)
    # A store replays the records one by one, then the revert: the same content.
    replay: pycrdt.Doc[Any] = pycrdt.Doc()
    for record in [*records, update]:
        replay.apply_update(record)
    assert content(replay.get_update()) == content(old)
    # Applied again, or once more computed, it changes nothing.
    assert revert_update(doc.get_update(), old) is None


@settings(max_examples=60, deadline=None)
@given(before=EDITS, after=EDITS, word=st.text(alphabet="QZ", min_size=3, max_size=5))
def test_concurrent_edits_still_merge(before: list[Any], after: list[Any], word: str) -> None:
    ours: pycrdt.Doc[Any] = pycrdt.Doc()
    old = edited(ours, before)
    current = edited(ours, after)
    theirs = load(current)  # another client, editing while the revert is made
    with theirs.transaction():
        theirs.get("text", type=pycrdt.Text).insert(0, word)
        theirs.get("map", type=pycrdt.Map)["theirs"] = word
    their_edit = theirs.get_update(ours.get_state())
    update = revert_update(current, old)
    one, two = load(current), load(current)
    if update is not None:
        one.apply_update(update)
    one.apply_update(their_edit)
    two.apply_update(their_edit)
    if update is not None:
        two.apply_update(update)
    assert content(one.get_update()) == content(two.get_update())  # both orders converge
    assert word in str(one.get("text", type=pycrdt.Text))
    assert one.get("map", type=pycrdt.Map)["theirs"] == word


def test_text_revert_is_a_minimal_diff() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("text", type=pycrdt.Text)
    text += "x" * 5000 + "middle" + "y" * 5000
    old = doc.get_update()
    del text[5000:5006]
    text.insert(5000, "changed")
    update = revert_update(doc.get_update(), old)
    assert update is not None
    assert len(update) < 100  # only the middle word, not the whole text again
    doc.apply_update(update)
    assert str(text) == "x" * 5000 + "middle" + "y" * 5000


def test_a_root_created_after_the_old_state_is_emptied() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.get("text", type=pycrdt.Text).insert(0, "kept")
    old = doc.get_update()
    doc.get("map", type=pycrdt.Map)["later"] = 1
    doc.get("list", type=pycrdt.Array).append("later")
    update = revert_update(doc.get_update(), old)
    assert update is not None
    doc.apply_update(update)
    assert doc.get("map", type=pycrdt.Map).to_py() == {}
    assert doc.get("list", type=pycrdt.Array).to_py() == []
    assert str(doc.get("text", type=pycrdt.Text)) == "kept"


def test_an_emptied_root_is_filled_again() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("text", type=pycrdt.Text)
    text += "once there"
    old = doc.get_update()
    del text[0 : len(text)]
    update = revert_update(doc.get_update(), old)
    assert update is not None
    doc.apply_update(update)
    assert str(text) == "once there"
