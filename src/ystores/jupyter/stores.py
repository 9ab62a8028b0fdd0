"""The store classes behind `ystores.jupyter`: ystores' stores with pycrdt-store's face.

Each class is, at once, a traitlets `LoggingConfigurable` (configured like
jupyter-collaboration's stores: `c.SQLiteYStore.db_path = ...`), a ystores store
(its storage, compaction and lifecycle) and a `pycrdt.store.BaseYStore` (the type
jupyter-collaboration's `ystore_class` trait and pycrdt-websocket's rooms expect).
The ystores class comes first in the method order, so its behaviour wins where
the two ancestors differ; `stop()` may be awaited, as pycrdt-store's is.

jupyter-collaboration builds a store as `ystore_class(path=..., log=..., config=...)`;
the configuration is loaded before the ystores store is set up, so every trait
(database, compaction) is in force from the first call.
"""

from __future__ import annotations

import os
from abc import ABCMeta
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import aclosing, contextmanager
from logging import Logger
from typing import Any, cast

import pycrdt.store
from traitlets import Bool, Int, MetaHasTraits, Unicode
from traitlets.config import Config, Configurable, LoggingConfigurable

from .. import errors, sql
from ..base import BaseYStore, MetadataCallback
from ..compaction.policy import CompactionPolicy
from ..filestore import store as filestore

__all__ = ["FileYStore", "PostgresYStore", "SQLiteYStore", "YDocNotFound", "visible_name"]


class YDocNotFound(errors.YDocNotFound, pycrdt.store.YDocNotFound):
    """No record for the document: caught by `except pycrdt.store.YDocNotFound` (the
    rooms of jupyter-collaboration and pycrdt-websocket) and by ystores' own handlers."""


@contextmanager
def _not_found_for_pycrdt() -> Iterator[None]:
    try:
        yield
    except errors.YDocNotFound as exc:
        if isinstance(exc, pycrdt.store.YDocNotFound):
            raise
        raise YDocNotFound(str(exc)) from exc


def visible_name(name: str) -> str:
    """The file store's name for a document: each part without its leading dots
    (`.notebook:1234.y` becomes `notebook:1234.y`); `.` and `..` parts are kept (and refused).
    """
    return "/".join(part.lstrip(".") or part for part in name.split("/"))


class _StoreMeta(MetaHasTraits, ABCMeta):
    """The metaclass of a class that is both a traitlets `HasTraits` and an ABC."""


class _EndOfInitChain:
    """Ends traitlets' `__init__` chain: the ystores store is set up explicitly, after
    the configuration has been loaded (traitlets would call it without arguments)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass


class _JupyterYStore(LoggingConfigurable, _EndOfInitChain, BaseYStore, metaclass=_StoreMeta):
    """Traits and adaptations shared by the `ystores.jupyter` stores."""

    squash_after_inactivity_of = Int(
        60,
        allow_none=True,
        config=True,
        help="""Seconds without a write after which a document's history is squashed into
        one snapshot with the same content (None: never for inactivity).""",
    )
    document_ttl = Int(
        None,
        allow_none=True,
        config=True,
        help="""Deprecated name of squash_after_inactivity_of; takes precedence when set.""",
    )
    squash_after_updates = Int(
        1000,
        allow_none=True,
        config=True,
        help="""Squash a document once more than this many updates follow its snapshot,
        so documents that are never idle are compacted too (None: no limit).""",
    )
    squash_after_bytes = Int(
        None,
        allow_none=True,
        config=True,
        help="""Squash a document once the updates after its snapshot hold more bytes
        (None: no limit).""",
    )

    def __init__(
        self,
        path: str,
        metadata_callback: MetadataCallback | None = None,
        log: Logger | None = None,
        *,
        config: Config | None = None,
        parent: Configurable | None = None,
        **kwargs: Any,
    ) -> None:
        """Load the configuration and the trait arguments, then set up the ystores store.

        Args:
            path: The document's name (jupyter-collaboration: `.{type}:{file id}.y`).
            metadata_callback: Returns the metadata stored with each update.
            log: Logger (default: the parent's, as for any `LoggingConfigurable`).
            config: The traitlets configuration (jupyter-collaboration passes its own).
            parent: A parent `Configurable`.
            **kwargs: Traits (`db_path=...`) and arguments of the ystores store
                (`clock`, `validate`, `compaction`...).
        """
        traits = {
            name: os.fspath(value) if isinstance(value, os.PathLike) else value
            for name, value in kwargs.items()
            if self.has_trait(name)
        }
        LoggingConfigurable.__init__(self, config=config, parent=parent, **traits)
        rest = {name: value for name, value in kwargs.items() if name not in traits}
        rest["compaction"] = rest.get("compaction") or self.compaction_policy()
        self._set_up_store(path, metadata_callback, log if log is not None else self.log, rest)

    def _set_up_store(
        self,
        path: str,
        metadata_callback: MetadataCallback | None,
        log: Logger,
        arguments: dict[str, Any],
    ) -> None:
        """Call the ystores store's `__init__` with the configured settings."""
        raise NotImplementedError

    def compaction_policy(self) -> CompactionPolicy | None:
        """The compaction policy the traits describe (None when every limit is off)."""
        ttl = (
            self.document_ttl if self.document_ttl is not None else self.squash_after_inactivity_of
        )
        policy = CompactionPolicy(
            ttl=ttl, max_updates=self.squash_after_updates, max_bytes=self.squash_after_bytes
        )
        return policy if policy.enabled else None

    async def read(self) -> AsyncIterator[tuple[bytes, bytes, float]]:
        """Iterate over `(update, metadata, timestamp)` (see the ystores store).

        Raises:
            YDocNotFound: No record (also a `pycrdt.store.YDocNotFound`).
        """
        with _not_found_for_pycrdt():
            records = cast(AsyncGenerator[tuple[bytes, bytes, float], None], super().read())  # type: ignore[safe-super]
            async with aclosing(records):
                async for record in records:
                    yield record

    async def apply_updates(self, ydoc: Any) -> None:
        """Apply every stored update to `ydoc` (a `pycrdt.Doc`).

        Raises:
            YDocNotFound: No record (also a `pycrdt.store.YDocNotFound`).
        """
        with _not_found_for_pycrdt():
            await super().apply_updates(ydoc)


class SQLiteYStore(_JupyterYStore, sql.SQLiteYStore, pycrdt.store.BaseYStore):  # type: ignore[misc]  # the two ancestors differ; ystores' wins
    """Documents in one SQLite database (`.jupyter_ystore.db` by default).

    The replacement for jupyter-collaboration's `SQLiteYStore`; configure it with
    `c.SQLiteYStore.db_path` and the compaction traits. `":memory:"` is an
    ephemeral database (see `ystores.SQLiteYStore`). A database written by
    pycrdt-store must first be converted with `ystore migrate PATH`.
    """

    db_path = Unicode(
        ".jupyter_ystore.db",
        config=True,
        help="""The SQLite database file (":memory:": an ephemeral database).""",
    )
    fsync = Bool(
        True,
        config=True,
        help="""Whether a commit returns only once it is on disk (False: a power loss may
        drop the last commits, a process crash loses nothing).""",
    )

    def _set_up_store(
        self,
        path: str,
        metadata_callback: MetadataCallback | None,
        log: Logger,
        arguments: dict[str, Any],
    ) -> None:
        sql.SQLiteYStore.__init__(
            self,
            path,
            metadata_callback,
            log,
            db_path=self.db_path,
            fsync=self.fsync,
            **arguments,
        )


class PostgresYStore(_JupyterYStore, sql.PostgresYStore, pycrdt.store.BaseYStore):  # type: ignore[misc]  # the two ancestors differ; ystores' wins
    """Documents in a Postgres database shared by every server (JupyterHub deployments).

    Configure the database with `c.PostgresYStore.db_url = "postgresql://user@host/db"`
    (or the environment variable `YSTORES_DATABASE_URL`).
    """

    db_url = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""The Postgres URL, postgresql://user:password@host:5432/dbname (default: the
        environment variable YSTORES_DATABASE_URL).""",
    )

    def _set_up_store(
        self,
        path: str,
        metadata_callback: MetadataCallback | None,
        log: Logger,
        arguments: dict[str, Any],
    ) -> None:
        url = arguments.pop("url", None) or self.db_url or os.environ.get("YSTORES_DATABASE_URL")
        if not url:
            raise errors.InvalidStoreURLError(
                "PostgresYStore needs a database URL: set c.PostgresYStore.db_url or the "
                "environment variable YSTORES_DATABASE_URL."
            )
        sql.PostgresYStore.__init__(self, path, metadata_callback, log, url=url, **arguments)


class FileYStore(_JupyterYStore, filestore.FileYStore, pycrdt.store.BaseYStore):  # type: ignore[misc]  # the two ancestors differ; ystores' wins
    """One checksummed file per document under `root_dir` (`.jupyter_ystore` by default).

    jupyter-collaboration names documents `.{type}:{file id}.y`; a file store refuses
    hidden names, so the leading dot is dropped: the file is `notebook:{file id}.y`
    (see `visible_name`).
    """

    root_dir = Unicode(
        ".jupyter_ystore",
        config=True,
        help="""The directory holding one file per document.""",
    )
    fsync = Bool(True, config=True, help="""Whether a write returns only once it is on disk.""")

    def _set_up_store(
        self,
        path: str,
        metadata_callback: MetadataCallback | None,
        log: Logger,
        arguments: dict[str, Any],
    ) -> None:
        filestore.FileYStore.__init__(
            self,
            visible_name(path),
            metadata_callback,
            log,
            root=self.root_dir,
            fsync=self.fsync,
            **arguments,
        )
