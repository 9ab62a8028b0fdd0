"""`ystore serve --workers N`: several server processes on one port and one store.

Each worker is a full `ystore serve` process (its own event loop, rooms,
connection pool and follower hub) listening on the same port with
`SO_REUSEPORT`, so the kernel spreads new connections over the workers. Two
clients of one document may therefore land on different workers: each room
follows the store (see `ystores.room.following`), which is what keeps them in
step; the store must be one that every worker reaches (SQLite or Postgres; a
file store directory on the same machine works too).

The parent process only supervises: it starts the workers, restarts one that
dies (a worker killed by the kernel loses nothing that was stored, and its
clients reconnect to the others), and on SIGINT or SIGTERM asks each worker
once to shut down cleanly, then waits for all of them.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import time
from dataclasses import replace
from logging import getLogger
from multiprocessing.process import BaseProcess
from typing import Any

from .serving import ServerOptions, make_app, run_server

__all__ = ["reuse_port_socket", "run_workers"]

log = getLogger("ystores")

RESTART_PAUSE = 1.0
"""Seconds before a worker that died is started again."""


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port` with `SO_REUSEPORT`, for one worker to listen on.

    Raises:
        OSError: The platform has no `SO_REUSEPORT`, or the address is taken
            by a process that did not set it.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _worker(options: ServerOptions) -> None:
    os.setpgrp()  # signals reach a worker once, from the supervisor, not from the terminal too
    run_server(make_app(options), options)


def run_workers(options: ServerOptions, count: int) -> int:
    """Run `count` server processes on `options.port` until SIGINT or SIGTERM.

    Args:
        options: How each worker serves (`port` must not be 0: the workers share it).
        count: How many workers.

    Returns:
        0 once every worker exited cleanly, else 1.
    """
    context = multiprocessing.get_context("spawn")
    worker_options = replace(options, reuse_port=True)
    workers: list[BaseProcess] = []
    stopping = False

    def start() -> BaseProcess:
        process = context.Process(target=_worker, args=(worker_options,), daemon=False)
        process.start()
        return process

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for process in workers:
            if process.pid is not None and process.exitcode is None:
                os.kill(process.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        workers.extend(start() for _ in range(count))
        while not stopping:
            for index, process in enumerate(workers):
                if process.exitcode is not None and not stopping:
                    log.warning(
                        "Worker %d (pid %s) exited with %s; starting another.",
                        index,
                        process.pid,
                        process.exitcode,
                    )
                    time.sleep(RESTART_PAUSE)
                    if not stopping:
                        workers[index] = start()
            time.sleep(0.2)
        for process in workers:
            process.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if all(process.exitcode == 0 for process in workers) else 1
