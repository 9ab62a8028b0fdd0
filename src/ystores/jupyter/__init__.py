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

from ..extras import require

require("jupyter", "ystores.jupyter")  # a clear error naming the extra, not an ImportError

from .stores import FileYStore, PostgresYStore, SQLiteYStore, YDocNotFound  # noqa: E402

__all__ = ["FileYStore", "PostgresYStore", "SQLiteYStore", "YDocNotFound"]
