"""The daily loss limit on the real signal path (router, ledger, Deriv worker, simulator):
concurrent signals open at most limit / stake trades; settling lost realises the stakes,
settling won releases them for the next signals."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import msgspec
from nats.aio.client import Client as NATS

from apps.core.db import connect_db
from apps.core.exposure import LOST, OPEN
from apps.core.messages import Signal, encode
from apps.core.redis import connect_redis
from apps.core.routing import pack_record, unpack_record
from apps.core.settings import Settings
from apps.core.topology import Topology
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.factories import make_signal
from tests.fixtures.pipeline import Pipeline, seed_subscribers
from tests.fixtures.waiting import wait_for

CHANNEL = "limits"


def synthetic(channel: str) -> Signal:
    """A signal on an index the simulator trades at any hour, settling in seconds."""
    return msgspec.structs.replace(make_signal(channel, asset="R_100"), expiry_seconds=60)


async def limit_to_30(settings: Settings, channel: str, subscription_id: str) -> None:
    redis = connect_redis(settings.redis_url)
    key = Topology(settings.namespace).routing_key(channel)
    raw = await redis.hget(key, subscription_id)
    assert raw is not None
    record = msgspec.structs.replace(unpack_record(raw), daily_loss_limit=Decimal("30"))
    await redis.hset(key, subscription_id, pack_record(record))
    await redis.aclose()


async def send_all(nc: NATS, settings: Settings, signals: list[Signal]) -> None:
    topology = Topology(settings.namespace)
    js = nc.jetstream()
    await asyncio.gather(
        *(
            js.publish(
                topology.signal_subject(s.channel_id),
                encode(s),
                headers={"Nats-Msg-Id": s.signal_id},
            )
            for s in signals
        )
    )


async def orders_of(settings: Settings, subscription_id: str) -> list[dict[str, Any]]:
    mongo, _ = connect_db(settings.mongodb_uri, settings.mongodb_database)
    try:
        db = mongo[settings.mongodb_database]
        return [d async for d in db.orders.find({"subscription_id": subscription_id})]
    finally:
        mongo.close()


async def exposure(settings: Settings, subscription_id: str) -> dict[str, int]:
    redis = connect_redis(settings.redis_url)
    key = Topology(settings.namespace).risk_key(subscription_id, time.time(), "exposure")
    raw = await redis.hmget(key, [LOST, OPEN])
    await redis.aclose()
    return {LOST: int(raw[0] or 0), OPEN: int(raw[1] or 0)}


async def test_a_limit_of_30_with_stakes_of_10_opens_at_most_3_trades(
    pipeline: Pipeline, sim: SimHandle, nc: NATS
) -> None:
    settings = pipeline.settings
    [loser] = await seed_subscribers(settings, sim, CHANNEL, count=1, accounts=1, stake="10")
    [winner] = await seed_subscribers(
        settings, sim, f"{CHANNEL}-w", count=1, accounts=1, stake="10"
    )
    await limit_to_30(settings, CHANNEL, loser.subscription_id)
    await limit_to_30(settings, f"{CHANNEL}-w", winner.subscription_id)
    for name in ("router", "ledger", "worker"):
        await pipeline.start(name)
    await pipeline.ready(nc)

    # Every contract loses: three stakes of 10 fill the limit of 30 for the whole day.
    await sim.faults(force_outcome="lost")
    await send_all(nc, settings, [synthetic(CHANNEL) for _ in range(8)])

    async def all_settled() -> list[dict[str, Any]] | None:
        orders = await orders_of(settings, loser.subscription_id)
        done = len(orders) == 8 and all(
            o.get("outcome") or o.get("state") != "placed" for o in orders
        )
        return orders if done else None

    orders = await wait_for(all_settled, timeout=120, what="8 orders, the placed ones settled")
    states = Counter(o["state"] for o in orders)
    assert states == {"placed": 3, "rejected": 5}, states
    assert all(o["outcome"] == "lost" for o in orders if o["state"] == "placed")
    reasons = {o["reason"] for o in orders if o["state"] == "rejected"}
    assert all(r.startswith("daily loss limit reached: ") for r in reasons), reasons
    assert all(r.endswith(" of 30.00 at risk or lost today") for r in reasons), reasons

    async def realised() -> dict[str, int] | None:
        held = await exposure(settings, loser.subscription_id)
        return held if held == {LOST: 3000, OPEN: 0} else None

    await wait_for(realised, what="the three lost stakes realised and nothing left open")

    # Every contract wins: the stakes come back, and the next signals have room again.
    await sim.faults(force_outcome="won")
    await send_all(nc, settings, [synthetic(f"{CHANNEL}-w") for _ in range(6)])

    async def first_settled() -> list[dict[str, Any]] | None:
        orders = await orders_of(settings, winner.subscription_id)
        done = len(orders) == 6 and all(
            o.get("outcome") or o.get("state") != "placed" for o in orders
        )
        return orders if done else None

    first = await wait_for(first_settled, timeout=120, what="6 orders, the placed ones settled")
    placed = sum(o["state"] == "placed" for o in first)
    assert placed >= 3  # at most 3 at once; a won contract frees its room for later ones

    async def released() -> dict[str, int] | None:
        held = await exposure(settings, winner.subscription_id)
        return held if held == {LOST: 0, OPEN: 0} else None

    await wait_for(released, what="the won stakes released")
    await send_all(nc, settings, [synthetic(f"{CHANNEL}-w") for _ in range(3)])

    async def three_more() -> bool:
        orders = await orders_of(settings, winner.subscription_id)
        return sum(o["state"] == "placed" for o in orders) == placed + 3

    await wait_for(three_more, timeout=120, what="three more trades placed in the freed room")
