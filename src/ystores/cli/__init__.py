"""The `ystore` command line (Typer)."""

from . import commands as _commands  # noqa: F401 - registers the commands
from . import pack_cmd as _pack_cmd  # noqa: F401 - registers `ystore pack`
from . import squash_cmd as _squash_cmd  # noqa: F401 - registers `ystore squash`
from .app import app, main

__all__ = ["app", "main"]
