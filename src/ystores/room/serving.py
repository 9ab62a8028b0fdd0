"""What `ystore serve` runs: a checked store, a `YStoreApp` with its options, and uvicorn.

`check_store` opens the store before anything listens, so a server never starts
on a store it cannot use; `run_server` serves until SIGINT or SIGTERM, then
closes every connection and every room, writing what each room holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base import BaseYStore
from ..compaction.policy import CompactionPolicy
from ..errors import StoreIOError, YStoreError
from ..filestore.store import FileYStore
from ..history.policy import CheckpointPolicy, RetentionPolicy
from ..urls import open_store
from .asgi import YStoreApp
from .room import DEFAULT_MAX_MESSAGE_SIZE

__all__ = [
    "DEFAULT_COMPACTION",
    "LOG_LEVELS",
    "ServerOptions",
    "check_store",
    "make_app",
    "run_server",
]

DEFAULT_COMPACTION = CompactionPolicy(ttl=60.0, max_updates=1000, max_bytes=4 * 1024 * 1024)
"""Squash a served document once it has been idle for a minute, or once more than
1,000 records or 4 MiB of updates follow its snapshot (busy documents too)."""

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")

_PROBE = "ystore-serve-check"


@dataclass(frozen=True)
class ServerOptions:
    """How `ystore serve` serves a store.

    Attributes:
        store: The store URL (as `ystores.urls.open_store` takes it).
        host: The interface to listen on.
        port: The port (0: any free port).
        token: The shared access token, None for none.
        compaction: The background compaction policy of each document's store
            while its room is open; None turns compaction off.
        max_message_size: The largest client message, in bytes.
        grace_period: Seconds a room stays open after its last client leaves.
        log_level: One of `LOG_LEVELS`.
        shutdown_timeout: Seconds connections get to close on shutdown before
            they are cut (rooms then store what they hold either way).
        reuse_port: Listen with `SO_REUSEPORT`, beside other workers on the same
            port (see `ystores.room.workers`).
        checkpoints: When each open document's store writes a checkpoint in the
            background; None: never.
        retention: How much history each open document's store keeps, applied
            in the background; None: all of it.
        compress: Store updates zlib-compressed (those long enough to shrink).
        packing: After each background checkpoint, pack the history it covers
            into blocks and thin old checkpoints (`BaseYStore.pack`).
    """

    store: str
    host: str = "127.0.0.1"
    port: int = 1234
    token: str | None = None
    compaction: CompactionPolicy | None = field(default=DEFAULT_COMPACTION)
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    grace_period: float = 5.0
    log_level: str = "info"
    shutdown_timeout: float = 10.0
    reuse_port: bool = False
    checkpoints: CheckpointPolicy | None = None
    retention: RetentionPolicy | None = None
    compress: bool = False
    packing: bool = True

    def store_options(self) -> dict[str, Any]:
        """The keyword arguments each document's store is opened with."""
        options: dict[str, Any] = {}
        if self.compaction is not None:
            options["compaction"] = self.compaction
        if self.checkpoints is not None:
            options["checkpoints"] = self.checkpoints
        if self.retention is not None:
            options["retention"] = self.retention
        if self.compress:
            options["compress"] = True
        return options

    def store_factory(self) -> Callable[[str], BaseYStore]:
        """Makes each document's store, with the compaction and history policies."""
        options = self.store_options()
        url = self.store

        packing = self.packing

        def factory(name: str) -> BaseYStore:
            store = open_store(url, name, **options)
            store.packing = packing  # an attribute: every backend has it, not every constructor
            return store

        return factory


async def check_store(options: ServerOptions) -> None:
    """Open the store and read from it once, as a room would; create a file store's directory.

    Raises:
        YStoreError: The store cannot be used (a database that does not exist or
            cannot be opened, a file where a directory should be, a directory
            whose parent is missing...): the store's own one-line error.
    """
    store = open_store(options.store, _PROBE)
    if isinstance(store, FileYStore):
        _check_directory(store.file_path.parent)
    try:
        async with store:
            await store.log_stats()
    except Exception as exc:  # the store's task group may wrap its error in a group
        cause = _innermost(exc)
        if isinstance(cause, YStoreError):
            raise cause from None
        if isinstance(cause, OSError):
            raise StoreIOError(f"The store {options.store} cannot be used: {cause}") from cause
        raise


def _innermost(exc: BaseException) -> BaseException:
    while True:
        group = getattr(exc, "exceptions", None)
        if not isinstance(group, tuple) or len(group) != 1:
            return exc
        exc = group[0]


def _check_directory(root: Path) -> None:
    if root.is_dir():
        return
    if root.exists():
        raise StoreIOError(f"The store directory {root} is not a directory.")
    if not root.parent.is_dir():
        raise StoreIOError(
            f"The store directory {root} does not exist, nor does its parent {root.parent}."
        )
    root.mkdir()


def make_app(options: ServerOptions, **app_options: Any) -> YStoreApp:
    """The application `run_server` serves (`app_options` go to `YStoreApp` as they are)."""
    if options.token:
        from ..web.auth import token_auth

        app_options.setdefault("authenticate", token_auth(options.token))
    return YStoreApp(
        options.store_factory(),
        grace_period=options.grace_period,
        max_message_size=options.max_message_size,
        **app_options,
    )


def browser_url(host: str, port: int) -> str:
    """The address a person on this machine opens for a server listening on `host`."""
    if host in ("0.0.0.0", "", "*"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def run_server(
    app: YStoreApp, options: ServerOptions, on_ready: Callable[[str], None] | None = None
) -> None:
    """Serve `app` with uvicorn until SIGINT or SIGTERM; then close every room, writing it.

    Args:
        app: The application.
        options: Where to listen, how much to log, how long shutdown may take.
        on_ready: Called with the browser URL (`http://HOST:PORT/`) once the
            server listens (with the real port when `options.port` is 0).
    """
    import uvicorn  # the server extra; imported only to serve

    level = options.log_level.lower()
    logging.getLogger("ystores").setLevel(level.upper())

    class _Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn re-raises SIGINT/SIGTERM once it has shut down, which would
            # make a clean, complete shutdown exit as killed; it exits 0 instead.
            with super().capture_signals():
                try:
                    yield
                finally:
                    self._captured_signals.clear()

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started and on_ready is not None:
                port = options.port
                if self.servers and self.servers[0].sockets:
                    port = self.servers[0].sockets[0].getsockname()[1]
                on_ready(browser_url(options.host, port))

    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        ws="wsproto",
        lifespan="on",
        log_level=level,
        timeout_graceful_shutdown=int(options.shutdown_timeout),
    )
    sockets = None
    if options.reuse_port:  # one of several workers on this port
        from .workers import reuse_port_socket

        sockets = [reuse_port_socket(options.host, options.port)]
    _Server(config).run(sockets=sockets)
