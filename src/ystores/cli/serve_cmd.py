"""`ystore serve`: serve a store's documents to Yjs clients and browsers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .app import app, library_errors
from .times import option_retention

if TYPE_CHECKING:
    from ..history.policy import CheckpointPolicy, RetentionPolicy

DEFAULT_STORE = "sqlite:///ystore.db"


@app.command("serve")
def serve_command(
    store: Annotated[
        str,
        typer.Option(
            "--store", help="Store URL: sqlite:///file.db, file:///dir/ or postgresql://..."
        ),
    ] = DEFAULT_STORE,
    host: Annotated[
        str, typer.Option(help="Interface to listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 1234,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="YSTORE_TOKEN",
            show_envvar=True,
            help="Shared access token clients must send (?token=... or Authorization: Bearer).",
        ),
    ] = None,
    compaction: Annotated[
        bool | None,
        typer.Option(
            "--compaction/--no-compaction",
            help="Squash open documents in the background (see --compact-idle, --compact-records); "
            "on unless history is kept (--retain, --checkpoint-every).",
            show_default=False,
        ),
    ] = None,
    compact_idle: Annotated[
        float | None,
        typer.Option(
            min=0, metavar="SECONDS", help="Squash a document idle this long (default 60)."
        ),
    ] = None,
    compact_records: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="COUNT",
            help="Squash a document once this many records follow its snapshot (default 1000).",
        ),
    ] = None,
    retain: Annotated[
        str | None,
        typer.Option(
            "--retain",
            metavar="HISTORY",
            help="Keep history instead of squashing it: all, a duration (30d: records younger "
            "than that), a size (64MiB: the newest records that fit), or none (squash, the "
            "default). Applied to open documents every 5 minutes.",
        ),
    ] = None,
    checkpoint_every: Annotated[
        int | None,
        typer.Option(
            "--checkpoint-every",
            min=1,
            metavar="N",
            help="With history kept, write a checkpoint of an open document once more than "
            "N records (or 1 MiB of updates) follow its latest one (default 250), so it "
            "still loads fast; alone, it implies --retain all.",
        ),
    ] = None,
    compress: Annotated[
        bool,
        typer.Option(
            "--compress/--no-compress",
            help="Store updates zlib-compressed (those long enough to shrink; mixed freely "
            "with raw ones).",
        ),
    ] = False,
    pack: Annotated[
        bool,
        typer.Option(
            "--pack/--no-pack",
            help="With history kept, pack the history each checkpoint covers into compressed "
            "blocks and thin old checkpoints (the default; `ystore pack` does it by hand).",
        ),
    ] = True,
    max_message_size: Annotated[
        int,
        typer.Option(min=1, metavar="BYTES", help="Close clients that send larger messages."),
    ] = 16 * 1024 * 1024,
    grace_period: Annotated[
        float,
        typer.Option(min=0, metavar="SECONDS", help="Keep a room open after its last client left."),
    ] = 5.0,
    log_level: Annotated[
        str,
        typer.Option(metavar="LEVEL", help="critical, error, warning, info or debug."),
    ] = "info",
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="N",
            help="Server processes sharing the port (SO_REUSEPORT) and the store; "
            "rooms follow the store, so clients of one document on different "
            "processes stay in step.",
        ),
    ] = 1,
) -> None:
    """Serve every document of a store: browsers open http://HOST:PORT/, Yjs clients ws://HOST:PORT/NAME.

    The store is opened and checked first: a store that cannot be used is an error
    (exit 1) before anything listens. SIGINT or SIGTERM closes every connection and
    writes every room's changes before exiting.
    """
    import anyio

    from ..extras import require

    with library_errors():
        require("server", "ystore serve")
    from ..compaction.policy import CompactionPolicy
    from ..room.serving import LOG_LEVELS, ServerOptions, check_store, make_app, run_server

    if log_level.lower() not in LOG_LEVELS:
        raise typer.BadParameter(f"use one of {', '.join(LOG_LEVELS)}.", param_hint="--log-level")
    if token is not None and not token.strip():
        raise typer.BadParameter("the token is empty.", param_hint="--token")
    history = _history(retain, checkpoint_every, compaction, compact_idle, compact_records)
    policy = (
        CompactionPolicy(
            ttl=60.0 if compact_idle is None else compact_idle,
            max_updates=1000 if compact_records is None else compact_records,
            max_bytes=4 * 1024 * 1024,
        )
        if compaction is not False and history is None
        else None
    )
    options = ServerOptions(
        store=store,
        host=host,
        port=port,
        token=token,
        compaction=policy,
        max_message_size=max_message_size,
        grace_period=grace_period,
        log_level=log_level,
        checkpoints=None if history is None else history[0],
        retention=None if history is None else history[1],
        compress=compress,
        packing=pack,
    )
    with library_errors():
        anyio.run(check_store, options)
        application = make_app(options)

    if workers > 1:
        from ..room.workers import run_workers

        if port == 0:
            raise typer.BadParameter("name a port for several workers.", param_hint="--port")
        typer.echo(f"Serving {store} with {workers} worker processes on port {port}.")
        raise typer.Exit(run_workers(options, workers))

    def ready(url: str) -> None:
        shown = f"{url}?token=<your token>" if token else url
        websocket = url.replace("http://", "ws://", 1)
        typer.echo(f"Serving {store} (Ctrl+C stops); Yjs clients: {websocket}<document name>")
        typer.echo(f"Open in a browser: {shown}")

    run_server(application, options, on_ready=ready)


def _history(
    retain: str | None,
    checkpoint_every: int | None,
    compaction: bool | None,
    compact_idle: float | None,
    compact_records: int | None,
) -> tuple[CheckpointPolicy, RetentionPolicy] | None:
    """The checkpoint and retention policies when history is kept; None when it is squashed."""
    from ..history.policy import CheckpointPolicy, RetentionPolicy

    retention = None if retain is None else option_retention(retain, "--retain")
    if retention is not None and retention.keeps_nothing:
        if checkpoint_every is not None:
            raise typer.BadParameter(
                "--retain none squashes history; checkpoints need history kept.",
                param_hint="--checkpoint-every",
            )
        return None
    if retention is None and checkpoint_every is None:
        return None
    if compaction or compact_idle is not None or compact_records is not None:
        raise typer.BadParameter(
            "squashing drops the history --retain and --checkpoint-every keep; give one or "
            "the other.",
            param_hint="--compaction",
        )
    checkpoints = (
        CheckpointPolicy() if checkpoint_every is None else CheckpointPolicy(checkpoint_every)
    )
    return checkpoints, retention or RetentionPolicy.all()
