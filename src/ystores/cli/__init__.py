"""The `ystore` command line (Typer)."""

from . import commands as _commands  # noqa: F401 - registers the commands
from .app import app, main

__all__ = ["app", "main"]
