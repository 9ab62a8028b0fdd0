"""`inspect --content`: root types inferred from the update structure (Text, Map, Array, XML)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pycrdt

from ystores.operations import infer_root_types

from .helpers import ok_json, ystore


def _edited_doc() -> pycrdt.Doc[Any]:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc["text"] = text = pycrdt.Text("hello")
    doc["map"] = pycrdt.Map({"a": 1, "nested": pycrdt.Map({"b": "c"})})
    doc["list"] = pycrdt.Array([1, "two", pycrdt.Array([3])])
    fragment = doc.get("xml", type=pycrdt.XmlFragment)
    fragment.children.append(pycrdt.XmlElement("p", {"class": "x"}, [pycrdt.XmlText("hi")]))
    text += " world"
    del text[0:6]  # the first item is deleted: later items name it as their origin
    doc["map"]["a"] = 2
    doc["empty"] = pycrdt.Map()
    return doc


def test_root_types_are_inferred_from_the_structure() -> None:
    update = _edited_doc().get_update()
    assert infer_root_types(update) == {
        "text": "Y.Text",
        "map": "Y.Map",
        "list": "Y.Array",
        "xml": "Y.XmlFragment",
    }  # an empty root writes no item: it has no type to show


def test_content_of_an_imported_document(tmp_path: Path) -> None:
    update = tmp_path / "doc.update"
    update.write_bytes(_edited_doc().get_update())
    store = str(tmp_path / "files")
    assert ystore("import", str(update), store, "--doc", "d").exit_code == 0
    content = ok_json("inspect", store, "--doc", "d", "--content")
    assert content == {
        "list": {"type": "Y.Array", "value": [1.0, "two", [3.0]]},
        "map": {"type": "Y.Map", "value": {"a": 2.0, "nested": {"b": "c"}}},
        "text": {"type": "Y.Text", "value": "world"},
        "xml": {"type": "Y.XmlFragment", "value": '<p class="x">hi</p>'},
    }
    shown = ystore("inspect", store, "--content")  # one document: --doc may be left out
    assert shown.exit_code == 0, shown.output
    assert "xml (Y.XmlFragment)" in shown.stdout
    assert '<p class="x">hi</p>' in shown.stdout
