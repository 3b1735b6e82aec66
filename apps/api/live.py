"""Live feedback from the executions every API instance receives on ``executions.*.*``:
progress of a channel's signals, relayed to the WebSockets that watch that channel (its
owner's and delegates' dashboards and CLIs), and each subscriber's own trades, pushed to
that user's open WebSockets.

Executions are only the trigger; the numbers come from the ledger's per-signal books in
Redis (exact under redelivery), so every API instance shows the same counts and a
missed trigger is repaired by the next poll. Each progress message also carries the
channel's running figures (``channel``: signals, placed, won, lost, pnl) from the ledger's
per-channel book in the same round trip, so a provider's page shows them moving without
re-reading MongoDB, whose copy the ledger brings up to date only after Redis.

Trades are pushed straight from the executions, never read back from MongoDB or Redis, so
a subscriber sees a placement while the ledger is still booking it (or is down). Pushing
costs little when most executions belong to users with no socket here: a batch is looked
at only while some user has a socket open, once per API instance whatever the number of
sockets; first only its executions' user ids are decoded (one dict lookup each), and the
executions themselves only when one of those users is here; a frame is encoded once for
all of its user's sockets.
Listeners take frames without awaiting (each socket keeps its own bounded backlog), so a
slow socket never holds up the batch or the others.

A core NATS subscription (not JetStream) is enough: live views need no history, and a
reconnecting client re-reads `GET /api/v1/signals/{id}` and `GET /api/v1/orders`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from redis.asyncio import Redis

from apps.api.trades.schemas import TradeOut, trade_from_execution
from apps.core.messages import ExecutionBatch, execution_event_decoder
from apps.core.signal_stats import signal_counts_from
from apps.core.topology import Topology

log = logging.getLogger("api.live")

Listener = Callable[[dict[str, Any]], Awaitable[None]]
# Takes one encoded ``trade`` frame; must not block (a socket queues it or drops it).
TradeListener = Callable[[bytes], None]

# Progress is pushed at most this often per signal: enough for a smooth progress bar,
# cheap for a 100k fan-out that produces thousands of execution messages a second.
PUSH_INTERVAL = 0.1
# After the fan-out is complete, keep following outcomes this long without news.
SETTLEMENT_PATIENCE = 15 * 60


class _Owner(msgspec.Struct, frozen=True, gc=False):
    user_id: str


class _Owners(msgspec.Struct, frozen=True, gc=False):
    """Only whose each execution of a batch is: msgspec skips every other field, several
    times faster than decoding the executions (a fan-out announcement has none)."""

    executions: list[_Owner] = []


_owners_decoder = msgspec.json.Decoder(_Owners)


class TradeMessage(msgspec.Struct, frozen=True, tag="trade", tag_field="type"):
    """``{"type": "trade", "trade": TradeOut}``: one execution of the socket's user."""

    trade: TradeOut


# Money as strings, as everywhere on the API.
_trade_encoder = msgspec.json.Encoder(decimal_format="string")


def channel_figures(raw: dict[bytes, bytes] | dict[str, str]) -> dict[str, Any]:
    """The headline figures of a channel from its Redis book (``channel_stats_key``)."""
    values = {_text(k): _text(v) for k, v in raw.items()}

    def count(name: str) -> int:
        text = values.get(name, "0")
        return int(text) if text.lstrip("-").isdigit() else 0

    return {
        "signals": count("signals"),
        "placed": count("placed"),
        "won": count("won"),
        "lost": count("lost"),
        "pnl": str(Decimal(count("pnl_minor")).scaleb(-2)),
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class LiveRelay:
    def __init__(self, nc: NATS, redis: Redis, topology: Topology) -> None:
        self.nc = nc
        self.redis = redis
        self.topology = topology
        self._listeners: dict[str, set[Listener]] = defaultdict(set)
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._dirty: dict[str, asyncio.Event] = {}
        self._sub: Subscription | None = None
        self._traders: dict[str, set[TradeListener]] = {}

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(
            self.topology.subject("executions", "*", "*"), cb=self._on_execution
        )

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        for task in self._watchers.values():
            task.cancel()
        for task in list(self._watchers.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def listen(self, channel_id: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with progress of every signal of ``channel_id``; returns the
        function that stops listening."""
        self._listeners[channel_id].add(listener)

        def unlisten() -> None:
            listeners = self._listeners.get(channel_id)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    self._listeners.pop(channel_id, None)

        return unlisten

    def listen_trades(self, user_id: str, listener: TradeListener) -> Callable[[], None]:
        """Hand ``listener`` a ``trade`` frame for every execution of ``user_id``'s orders;
        returns the function that stops it."""
        self._traders.setdefault(user_id, set()).add(listener)

        def unlisten() -> None:
            listeners = self._traders.get(user_id)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    self._traders.pop(user_id, None)

        return unlisten

    def trade_sockets(self, user_id: str) -> int:
        """How many of ``user_id``'s sockets here receive their trades."""
        return len(self._traders.get(user_id, ()))

    def push_trades(self, data: bytes) -> int:
        """Hand each execution in ``data`` (an encoded execution event) to its user's
        listeners; returns how many frames were handed over."""
        traders = self._traders
        if not traders:
            return 0
        try:
            owners = _owners_decoder.decode(data)
            if not any(owner.user_id in traders for owner in owners.executions):
                return 0
            event = execution_event_decoder.decode(data)
        except msgspec.DecodeError:
            log.warning("undecodable execution event skipped", exc_info=True)
            return 0
        match event:
            case ExecutionBatch(executions=executions):
                pass
            case _:
                return 0
        handed = 0
        for execution in executions:
            listeners = traders.get(execution.user_id)
            if not listeners:
                continue
            frame = _trade_encoder.encode(TradeMessage(trade=trade_from_execution(execution)))
            for listener in tuple(listeners):
                try:
                    listener(frame)
                except Exception:  # one broken socket must not stop its user's other feeds
                    log.debug("trade listener failed", exc_info=True)
                handed += 1
        return handed

    def watch(self, channel_id: str, signal_id: str) -> None:
        """Follow a signal from the moment it is accepted (before any execution exists)."""
        self._touch(channel_id, signal_id)

    async def _on_execution(self, msg: Msg) -> None:
        parts = msg.subject.split(".")
        channel_id, signal_id = parts[-2], parts[-1]
        if channel_id in self._listeners:
            self._touch(channel_id, signal_id)
        self.push_trades(msg.data)

    def _touch(self, channel_id: str, signal_id: str) -> None:
        event = self._dirty.get(signal_id)
        if event is None:
            event = self._dirty[signal_id] = asyncio.Event()
            self._watchers[signal_id] = asyncio.create_task(
                self._follow(channel_id, signal_id, event)
            )
        event.set()

    async def _follow(self, channel_id: str, signal_id: str, dirty: asyncio.Event) -> None:
        """Push the signal's counts whenever they change, until it is complete and
        settled (or nothing has happened for a long time)."""
        last: dict[str, Any] | None = None
        quiet_since = time.monotonic()
        try:
            while channel_id in self._listeners:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(dirty.wait(), 1.0)
                dirty.clear()
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.hgetall(self.topology.signal_stats_key(signal_id))
                    pipe.hgetall(self.topology.channel_stats_key(channel_id))
                    raw, channel_raw = await pipe.execute()
                progress = {
                    "type": "progress",
                    "channel_id": channel_id,
                    "signal_id": signal_id,
                    **signal_counts_from(raw),
                    "channel": channel_figures(channel_raw),
                }
                if progress != last:
                    last = progress
                    quiet_since = time.monotonic()
                    await self._push(channel_id, progress)
                settled = progress["won"] + progress["lost"] >= progress["counts"]["placed"]
                if progress["done"] and settled:
                    return
                if time.monotonic() - quiet_since > SETTLEMENT_PATIENCE:
                    return
                await asyncio.sleep(PUSH_INTERVAL)
        finally:
            self._dirty.pop(signal_id, None)
            self._watchers.pop(signal_id, None)

    async def _push(self, channel_id: str, progress: dict[str, Any]) -> None:
        for listener in list(self._listeners.get(channel_id, ())):
            try:
                await listener(progress)
            except Exception:  # a broken socket must not stop the others' feed
                log.debug("live listener failed", exc_info=True)
