"""The live feed carries a channel's running figures, so a provider's counters move
without a reload: real API, NATS, Valkey, router and ledger (refusals only, no broker)."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

import websockets

from apps.core.redis import connect_redis
from apps.core.routing import RoutingRecord, pack_record
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.ledger.main import run as run_ledger
from apps.router.main import consume as run_router
from tests.fixtures.live_api import Api, ApiServer

SIGNAL = {"asset": "EURUSD", "direction": "CALL", "expiry_seconds": 60, "stake": "10"}


async def paused_subscribers(settings: Settings, channel: str, n: int) -> None:
    """``n`` paused subscribers: the router refuses each, no broker needed."""
    redis = connect_redis(settings.redis_url)
    records = {
        f"sub{i}": pack_record(
            RoutingRecord(
                subscription_id=f"sub{i}",
                channel_id=channel,
                subscriber_id=f"user{i}",
                broker_kind="deriv",
                broker_account_id="ba1",
                credentials_ref="ba1",
                currency="USD",
                stake_mode="fixed",
                stake=Decimal("1"),
                max_stake=Decimal("5"),
                paused=True,
                expires_at=int(time.time()) + 3600,
            )
        )
        for i in range(n)
    }
    await redis.hset(Topology(settings.namespace).routing_key(channel), mapping=records)  # type: ignore[misc]
    await redis.aclose()


async def test_progress_carries_the_channels_signal_count_as_each_signal_fans_out(
    api_server: ApiServer, http: Api, settings: Settings
) -> None:
    owner = await http.user("provider", "paula")
    channel = await http.channel(owner)
    await paused_subscribers(settings, channel, 3)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(run_router(settings, stop)),
        asyncio.create_task(run_ledger(settings, stop)),
    ]
    try:
        ws = await websockets.connect(api_server.ws_url)
        await ws.send(json.dumps({"type": "auth", "token": owner.access_token}))
        assert json.loads(await ws.recv())["type"] == "ready"
        seen: list[int] = []
        for _ in range(2):
            await ws.send(json.dumps({"type": "signal", "channel_id": channel, **SIGNAL}))
            last: dict[str, Any] = {}
            # Until this signal is done: the ledger has counted its fan-out by then.
            while not (last.get("type") == "progress" and last.get("done")):
                last = json.loads(await asyncio.wait_for(ws.recv(), 30))
            seen.append(last["channel"]["signals"])
        await ws.close()
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 15)
    assert seen == [1, 2]
    assert last["channel"] == {"signals": 2, "placed": 0, "won": 0, "lost": 0, "pnl": "0.00"}
