"""A uvicorn server inside the current event loop, for the local stand-ins (the broker
simulators, Stripe's and Telegram's) that tests and the embedded stack run in process.

The socket is bound before the server starts, so port 0 yields a free port the caller
knows before anything connects; ``serving`` returns once the server accepts connections
and, on exit, stops it and waits for it to end, so no request is cut short and the port is
free again when it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import uvicorn


def bound_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: a free port, read back with getsockname)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


@contextlib.asynccontextmanager
async def serving(
    server: uvicorn.Server,
    sock: socket.socket,
    *,
    on_stop: Callable[[], Awaitable[object]] | None = None,
) -> AsyncIterator[None]:
    """Serve on ``sock`` until the block ends; ``on_stop`` runs once the server was told to
    exit and before it is waited for (to answer held requests, flush a journal)."""
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # a server that failed to start raises here
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        if on_stop is not None:
            await on_stop()
        await task
        sock.close()
