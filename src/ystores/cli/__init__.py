"""The `ystore` command line (Typer)."""

from . import commands as _commands  # noqa: F401 - registers the commands
from . import squash_cmd as _squash_cmd  # noqa: F401 - registers `ystore squash`
from .app import app, main

__all__ = ["app", "main"]
