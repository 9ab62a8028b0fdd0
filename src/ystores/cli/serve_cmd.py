"""`ystore serve`: serve a store's documents to Yjs clients and browsers."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import app, library_errors

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
        bool,
        typer.Option(
            "--compaction/--no-compaction",
            help="Squash open documents in the background (see --compact-idle, --compact-records).",
        ),
    ] = True,
    compact_idle: Annotated[
        float,
        typer.Option(min=0, metavar="SECONDS", help="Squash a document idle this long."),
    ] = 60.0,
    compact_records: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="COUNT",
            help="Squash a document once this many records follow its snapshot.",
        ),
    ] = 1000,
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
    policy = (
        CompactionPolicy(ttl=compact_idle, max_updates=compact_records, max_bytes=4 * 1024 * 1024)
        if compaction
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
