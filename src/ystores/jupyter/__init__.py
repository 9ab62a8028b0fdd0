"""Drop-in stores for jupyter-collaboration and pycrdt-websocket.

Select one with a line of Jupyter configuration:

```python
c.YDocExtension.ystore_class = "ystores.jupyter.SQLiteYStore"
```

The classes are subclasses of `pycrdt.store.BaseYStore` (so jupyter-collaboration's
`ystore_class` trait accepts them) and of the matching ystores store, configured
with traitlets like jupyter-collaboration's own stores. Needs the `jupyter` extra
(`pip install "ystores[jupyter]"`): pycrdt-store and traitlets.
"""

from __future__ import annotations

try:
    import pycrdt.store  # noqa: F401
    import traitlets  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        f"ystores.jupyter needs the jupyter extra ({exc.name} is missing): "
        'pip install "ystores[jupyter]"'
    ) from exc

from .stores import FileYStore, PostgresYStore, SQLiteYStore, YDocNotFound

__all__ = ["FileYStore", "PostgresYStore", "SQLiteYStore", "YDocNotFound"]
