"""One WebSocket peer of a simulator: writes that are synchronous and keep their order.

A broker kind's connection class extends :class:`Peer` with its own state (the login,
its streams); the writing, dropping and task keeping are the same for every kind.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]

# Decimals go out as JSON numbers, as brokers send money.
encoder = msgspec.json.Encoder(decimal_format="number")


def encode(payload: Any) -> str:
    return encoder.encode(payload).decode()


@dataclass(eq=False)
class Peer:
    """One WebSocket peer.

    Writes are synchronous and keep their order: :meth:`push` hands the frame to the
    transport at once (uvicorn's send only suspends while the peer is not reading, so an
    eagerly started task almost always finishes on the spot, with no scheduling); while a
    write is suspended, later frames wait in ``_backlog`` behind it.
    """

    send_event: Send
    closed: bool = False
    last_seen: float = field(default_factory=time.monotonic)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    key: str = field(default_factory=lambda: f"conn-{secrets.token_hex(4)}")
    _backlog: deque[str] | None = None

    def push(self, payload: Any) -> None:
        if not self.closed:
            self.push_text(encode(payload))

    def push_text(self, text: str) -> None:
        if self.closed:
            return
        if self._backlog is not None:  # a write is waiting for the peer: queue behind it
            self._backlog.append(text)
            return
        task = _eager(_call(self.send_event, {"type": "websocket.send", "text": text}))
        if task.done():
            if task.cancelled() or task.exception() is not None:
                self.closed = True  # the peer vanished; the receive loop cleans up
            return
        self._backlog = deque()
        self.keep(asyncio.create_task(self._drain(task)))

    async def _drain(self, pending: asyncio.Task[None]) -> None:
        try:
            await pending
            while self._backlog and not self.closed:
                text = self._backlog.popleft()
                await self.send_event({"type": "websocket.send", "text": text})
        except Exception:
            self.closed = True
        finally:
            self._backlog = None

    def drop(self, code: int = 1011, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        task = _eager(
            _call(self.send_event, {"type": "websocket.close", "code": code, "reason": reason})
        )
        if task.done():
            _quiet(task)
        else:
            self.keep(task)
            task.add_done_callback(_quiet)

    def keep(self, task: asyncio.Task[None]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


async def _call(send: Send, event: Message) -> None:
    await send(event)


def _eager(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A task that runs at once and is usually done before this returns (no scheduling)."""
    return asyncio.eager_task_factory(asyncio.get_running_loop(), coro)


def _quiet(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a close to a vanished peer is not worth a log line
