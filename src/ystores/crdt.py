"""The one place that touches a CRDT engine: y-py or pycrdt.

A document handed to ystores may be a `y_py.YDoc` or a `pycrdt.Doc`; functions
here dispatch on its type, so the rest of the package never imports an engine.
y-py is the default engine where it installs (it has no wheels for Python 3.13
and later); pycrdt is used everywhere else and always for decoding checks.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable
from typing import Any, Literal

import pycrdt

from .errors import InvalidUpdateError

__all__ = [
    "EMPTY_UPDATE",
    "Engine",
    "apply_update",
    "default_engine",
    "encode_state_as_update",
    "merge_updates",
    "new_doc",
    "validate_update",
]

Engine = Literal["y-py", "pycrdt"]

EMPTY_UPDATE = b"\x00\x00"
"""A Yjs v1 update that changes nothing (no structs, empty delete set)."""


def _y_py() -> Any:
    import y_py

    return y_py


def default_engine() -> Engine:
    """y-py where it is installed, pycrdt otherwise."""
    return "y-py" if importlib.util.find_spec("y_py") is not None else "pycrdt"


def new_doc(engine: Engine | None = None) -> Any:
    """A new empty document of the given engine (the default engine when None)."""
    engine = engine or default_engine()
    if engine == "pycrdt":
        return pycrdt.Doc()
    if engine == "y-py":
        return _y_py().YDoc()
    raise ValueError(f"Unknown CRDT engine {engine!r}; use 'y-py' or 'pycrdt'.")


def _is_y_py_doc(doc: object) -> bool:
    y_py = sys.modules.get("y_py")  # a y-py document exists only once y_py is imported
    return y_py is not None and isinstance(doc, y_py.YDoc)


def _unsupported(doc: object) -> TypeError:
    kind = f"{type(doc).__module__}.{type(doc).__qualname__}"
    return TypeError(f"Expected a y_py.YDoc or a pycrdt.Doc, got {kind}.")


def apply_update(doc: object, update: bytes) -> None:
    """Apply one Yjs v1 update to a y-py or pycrdt document.

    Raises:
        InvalidUpdateError: The engine could not decode the update.
        TypeError: `doc` is not a document of a supported engine.
    """
    try:
        if isinstance(doc, pycrdt.Doc):
            doc.apply_update(update)
        elif _is_y_py_doc(doc):
            _y_py().apply_update(doc, update)
        else:
            raise _unsupported(doc)
    except TypeError:
        raise
    except Exception as exc:
        raise InvalidUpdateError(f"A stored update could not be applied: {exc}.") from exc


def encode_state_as_update(doc: object) -> bytes:
    """The whole state of a y-py or pycrdt document as one Yjs v1 update."""
    if isinstance(doc, pycrdt.Doc):
        return doc.get_update()
    if _is_y_py_doc(doc):
        return bytes(_y_py().encode_state_as_update(doc))
    raise _unsupported(doc)


def validate_update(update: bytes) -> None:
    """Check that `update` decodes as a Yjs v1 update (about a microsecond).

    Raises:
        InvalidUpdateError: It does not.
    """
    if not isinstance(update, bytes | bytearray | memoryview):
        raise InvalidUpdateError(f"An update must be bytes, not {type(update).__name__}.")
    try:
        pycrdt.get_state(bytes(update))
    except Exception as exc:
        raise InvalidUpdateError(
            f"These {len(update)} bytes are not a Yjs v1 update ({exc}); nothing was written."
        ) from exc


def merge_updates(updates: Iterable[bytes]) -> bytes:
    """Merge updates into one update that has the same effect as applying them all."""
    batch = list(updates)
    if not batch:
        return EMPTY_UPDATE
    return pycrdt.merge_updates(*batch)
