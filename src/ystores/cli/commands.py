"""Registers every command module on the application."""

from . import (
    copy_cmd,
    demo_cmd,
    export_cmd,
    history_cmd,
    import_cmd,
    inspect_cmd,
    log_cmd,
    ls_cmd,
    migrate_cmd,
    restore_cmd,
    serve_cmd,
    verify_cmd,
)

__all__ = [
    "copy_cmd",
    "demo_cmd",
    "export_cmd",
    "history_cmd",
    "import_cmd",
    "inspect_cmd",
    "log_cmd",
    "ls_cmd",
    "migrate_cmd",
    "restore_cmd",
    "serve_cmd",
    "verify_cmd",
]
