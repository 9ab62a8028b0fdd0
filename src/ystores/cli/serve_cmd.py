"""`ystore serve`: serve a store's documents to Yjs clients over websockets."""

from __future__ import annotations

from typing import Annotated

import typer

from ..room.asgi import YStoreApp
from ..urls import open_store
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
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 1234,
) -> None:
    """Serve every document of a store at ws://HOST:PORT/NAME until interrupted."""
    import uvicorn  # imported here: the other commands start faster without it

    with library_errors():
        open_store(store, "ystore")  # refuse a bad URL before listening
        application = YStoreApp(store)
    typer.echo(f"Serving {store} at ws://{host}:{port}/<document name> (Ctrl+C to stop).")
    uvicorn.run(application, host=host, port=port, ws="wsproto", lifespan="on", log_level="info")
