"""Subscriptions the ledger pauses, durably in MongoDB and at once in their routing records.

Two things pause a subscription without its subscriber: a broker that refuses the
account's credentials (:mod:`apps.ledger.relink`) and a balance that fell the
subscription's maximum drawdown below its peak (:mod:`apps.ledger.risk`). Both go through
here, in the same order, so a repeat completes what a crash interrupted:

1. MongoDB: each active subscription that is not paused is paused with its reason (a
   subscription already paused keeps the reason it has: the subscriber's own pause, or an
   earlier one, is not overwritten);
2. Redis: the routing record of each subscription now paused with one of the given
   reasons is rewritten as paused, so the router refuses its next orders with that reason.

A subscription without a routing record (the API removed it) stays without one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from apps.core.relink import SUBSCRIPTIONS_COLLECTION, paused_record
from apps.core.routing import pack_record, unpack_record
from apps.core.topology import Topology


async def pause_subscriptions(
    db: Any, redis: Redis, topology: Topology, reasons: Mapping[str, str]
) -> int:
    """Pause the subscriptions ``reasons`` names (subscription id → reason); the number
    newly paused in MongoDB. ``db``: the motor database the ledger writes."""
    if not reasons:
        return 0
    subscriptions = db[SUBSCRIPTIONS_COLLECTION]
    paused = 0
    for subscription_id, reason in reasons.items():
        changed = await subscriptions.update_one(
            {"_id": subscription_id, "status": "active", "paused": False},
            {"$set": {"paused": True, "paused_reason": reason}},
        )
        paused += changed.modified_count
    rows = await subscriptions.find(
        {"_id": {"$in": list(reasons)}, "status": "active", "paused": True},
        {"channel_id": 1, "paused_reason": 1},
    ).to_list(None)
    wanted = set(reasons.values())
    await pause_routing(
        redis,
        topology,
        [
            (row["channel_id"], row["_id"], row["paused_reason"])
            for row in rows
            if row.get("paused_reason") in wanted
        ],
    )
    return paused


async def pause_routing(
    redis: Redis, topology: Topology, paused: list[tuple[str, str, str]]
) -> None:
    """Rewrite the routing records of ``paused`` (channel, subscription, reason) as paused;
    a subscription without a record (the API removed it) stays without one."""
    if not paused:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for channel_id, subscription_id, _ in paused:
            pipe.hget(topology.routing_key(channel_id), subscription_id)
        records: list[bytes | None] = await pipe.execute()
    async with redis.pipeline(transaction=False) as pipe:
        for (channel_id, subscription_id, reason), raw in zip(paused, records, strict=True):
            if raw is None:
                continue
            record = unpack_record(raw)
            if record.paused and record.paused_reason == reason:
                continue
            pipe.hset(
                topology.routing_key(channel_id),
                subscription_id,
                pack_record(paused_record(record, reason)),
            )
        await pipe.execute()
