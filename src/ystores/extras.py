"""Optional features and the extras that install them, checked before they are used.

`pip install ystores` is the file store and the command line; each other backend
or feature is an extra, so a user installs only what they use:

| extra | adds | for |
|---|---|---|
| `sqlite` | SQLAlchemy, Alembic, aiosqlite | `SQLiteYStore`, `sqlite:///` URLs |
| `postgres` | SQLAlchemy, Alembic, asyncpg | `PostgresYStore`, `postgresql://` URLs |
| `server` | uvicorn, wsproto | `ystore serve` |
| `ypy` | y-py | y-py documents (pycrdt is always there) |
| `client` | websockets | `ystores.client` (the Python client and `bind`) |
| `django` | channels | `ystores.django` (the Django Channels consumer) |
| `jupyter` | pycrdt-store, traitlets, `sqlite` | `ystores.jupyter` (Jupyter, pycrdt-websocket) |
| `all` | all of the above | |
"""

from __future__ import annotations

import importlib.util

from .errors import MissingExtraError

__all__ = ["EXTRAS", "require"]

EXTRAS: dict[str, tuple[str, ...]] = {
    "sqlite": ("sqlalchemy", "alembic", "aiosqlite"),
    "postgres": ("sqlalchemy", "alembic", "asyncpg"),
    "server": ("uvicorn", "wsproto"),
    "ypy": ("y_py",),
    "client": ("websockets",),
    "django": ("channels",),
    "jupyter": ("pycrdt.store", "traitlets", "sqlalchemy", "alembic", "aiosqlite"),
}
_SQL_CORE = ("sqlalchemy", "alembic")
_checked: set[str] = set()


def require(extra: str, feature: str) -> None:
    """Check that the packages of `extra` are installed (once per process).

    Args:
        extra: A key of `EXTRAS`, or `sql` for what both SQL backends share.
        feature: What needs them, for the message ("SQLite stores").

    Raises:
        MissingExtraError: A package is missing; the message says what to install.
    """
    if extra in _checked:
        return
    modules = _SQL_CORE if extra == "sql" else EXTRAS[extra]
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        install = (
            "pip install 'ystores[sqlite]' (SQLite) or 'ystores[postgres]' (Postgres)"
            if extra == "sql"
            else f"pip install 'ystores[{extra}]'"
        )
        names = " and ".join(missing) if len(missing) < 3 else ", ".join(missing)
        raise MissingExtraError(
            f"{feature} need{'s' if not feature.endswith('s') else ''} {names}, "
            f"which {'is' if len(missing) == 1 else 'are'} not installed: {install}",
            extra=extra,
        )
    _checked.add(extra)
