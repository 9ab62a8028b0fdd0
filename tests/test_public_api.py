"""The public API is what `ystores.__all__` says, and the ancestor's names are in it."""

from __future__ import annotations

import ystores

ANCESTOR_NAMES = {"BaseYStore", "FileYStore", "TempFileYStore", "YDocNotFound"}


def test_all_names_exist_and_are_sorted() -> None:
    assert sorted(ystores.__all__) == ystores.__all__
    for name in ystores.__all__:
        assert getattr(ystores, name) is not None


def test_ancestor_api_is_kept() -> None:
    assert set(ystores.__all__) >= ANCESTOR_NAMES
    for method in ("write", "read", "apply_updates", "encode_state_as_update", "get_metadata"):
        assert callable(getattr(ystores.BaseYStore, method))
    for method in ("start", "stop", "__aenter__", "__aexit__"):
        assert callable(getattr(ystores.BaseYStore, method))
    assert isinstance(ystores.BaseYStore.started, property)


def test_every_error_derives_from_ystoreerror() -> None:
    errors = [
        getattr(ystores, name) for name in ystores.__all__ if name.endswith(("Error", "Found"))
    ]
    assert errors
    for error in errors:
        assert issubclass(error, ystores.YStoreError)
