"""Registers every command module on the application."""

from . import demo_cmd, inspect_cmd, migrate_cmd, serve_cmd

__all__ = ["demo_cmd", "inspect_cmd", "migrate_cmd", "serve_cmd"]
