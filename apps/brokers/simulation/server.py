"""One port per simulator: the broker's WebSocket protocol and the admin HTTP API.

Why uvicorn rather than ``websockets.serve``: the websockets server refuses HTTP requests
with a body, and the admin API needs POST/PUT bodies on the same port; uvicorn serves an
ASGI app that handles both (its WebSocket side runs on the websockets library anyway).

A broker kind supplies a :class:`SimulatedWebSocketBroker`: its WebSocket path, its peer
class, and what it does with each message; this module accepts the peers, counts their
messages, applies the connection faults (a drop after N messages, the idle timeout) and
runs the server inside a test's event loop or as its own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

import uvicorn

from apps.brokers.simulation.admin import Receive, Scope, Send, SimulatedBroker, serve_http
from apps.brokers.simulation.peer import Peer
from apps.core.serving import bound_socket, serving


class SimulatedWebSocketBroker[P: Peer](SimulatedBroker, Protocol):
    """What a broker kind's simulator supplies to the transport."""

    @property
    def websocket_path(self) -> str:
        """Where the broker's WebSocket API is served, e.g. ``/websockets/v3``."""
        ...

    @property
    def idle_timeout_seconds(self) -> float:
        """A peer silent this long is closed."""
        ...

    def new_peer(self, send: Send) -> P: ...

    def connect(self, peer: P) -> None: ...

    def disconnect(self, peer: P) -> None:
        """The peer is gone: forget it (mark it closed, drop its streams)."""
        ...

    def receive(self, peer: P, text: str) -> None:
        """One incoming message; replies go out through ``peer.push``."""
        ...

    async def stop(self) -> None:
        """The server has stopped: cancel timers, flush the journal."""
        ...


class SimulatorApp[P: Peer]:
    """The ASGI app: WebSocket peers to the broker, HTTP requests to the admin API."""

    def __init__(self, broker: SimulatedWebSocketBroker[P]) -> None:
        self.broker = broker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await serve_http(self.broker, scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        broker = self.broker
        await receive()  # websocket.connect
        if scope["path"].rstrip("/") != broker.websocket_path:
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        peer = broker.new_peer(send)
        broker.connect(peer)
        watchdog = asyncio.create_task(self._idle_watchdog(peer))
        try:
            while not peer.closed:
                event = await receive()
                if event["type"] != "websocket.receive":
                    break
                peer.last_seen = time.monotonic()
                text = event.get("text") or (event.get("bytes") or b"").decode()
                broker.stats["messages"] += 1
                faults = broker.faults
                if faults.drop_after_messages is not None and faults.take_message_drop():
                    broker.stats["drops"] += 1
                    peer.drop(1011, "dropped by fault switch")
                    break
                broker.receive(peer, text)
        finally:
            watchdog.cancel()
            broker.disconnect(peer)

    async def _idle_watchdog(self, peer: P) -> None:
        timeout = self.broker.idle_timeout_seconds
        while not peer.closed:
            idle = time.monotonic() - peer.last_seen
            if idle >= timeout:
                peer.drop(1000, "idle timeout")
                return
            await asyncio.sleep(timeout - idle)


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host (tests, `copier up`)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


class RunningSimulator[B]:
    """A simulator serving on ``host:port`` (see :func:`running`)."""

    def __init__(
        self, simulator: B, server: uvicorn.Server, host: str, port: int, websocket_path: str
    ) -> None:
        self.simulator = simulator
        self.server = server
        self.host = host
        self.port = port
        self.websocket_path = websocket_path

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{self.websocket_path}"

    @property
    def admin_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def uvicorn_server[P: Peer](
    broker: SimulatedWebSocketBroker[P], *, embedded: bool, compression: bool
) -> uvicorn.Server:
    config = uvicorn.Config(
        SimulatorApp(broker),
        ws="websockets-sansio",
        lifespan="off",
        log_level="warning",
        access_log=False,
        ws_max_size=64 * 1024,
        # Brokers send their own app-level pongs; protocol pings stay enabled so dead
        # peers are noticed.
        ws_ping_interval=20.0,
        ws_per_message_deflate=compression,
    )
    return _EmbeddedServer(config) if embedded else uvicorn.Server(config)


@contextlib.asynccontextmanager
async def running[B: SimulatedWebSocketBroker[Any]](
    broker: B, *, host: str, port: int, compression: bool
) -> AsyncIterator[RunningSimulator[B]]:
    """Serve ``broker`` inside the current event loop; port 0 picks a free port."""
    sock = bound_socket(host, port)
    server = uvicorn_server(broker, embedded=True, compression=compression)
    async with serving(server, sock, on_stop=broker.stop):
        yield RunningSimulator(broker, server, host, sock.getsockname()[1], broker.websocket_path)


class _StoppingServer(uvicorn.Server):
    """A process's uvicorn server that stops its broker as part of its own shutdown.

    uvicorn re-raises the SIGINT/SIGTERM it caught once ``serve`` returns, which ends the
    process there: the broker's stop (its journal's last batch) must run before that.
    """

    def __init__(self, config: uvicorn.Config, broker: SimulatedWebSocketBroker[Any]) -> None:
        super().__init__(config)
        self.broker = broker

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().shutdown(sockets)
        finally:
            await self.broker.stop()


async def serve_until_stopped[P: Peer](
    broker: SimulatedWebSocketBroker[P], *, host: str, port: int, compression: bool
) -> None:
    """Run as the process's server until SIGINT/SIGTERM (uvicorn handles the signals);
    the broker is stopped before the process ends."""
    config = uvicorn_server(broker, embedded=False, compression=compression).config
    config.host, config.port = host, port
    await _StoppingServer(config, broker).serve()
