"""Where the legacy fixtures live: files and databases written by ypy-websocket and pycrdt-store.

They are copies of the project's shared fixtures kept in the repository, so the tests run
from a plain clone.
"""

from __future__ import annotations

from pathlib import Path

LEGACY_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "legacy"
