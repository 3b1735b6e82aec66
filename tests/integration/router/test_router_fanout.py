"""The router against real NATS and Redis: orders, refusals, shards, exactly-once publishes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import msgspec
from nats.aio.client import Client as NATS

from apps.core.messages import (
    ExecutionBatch,
    FanoutStarted,
    OrderBatch,
    Signal,
    encode,
    execution_event_decoder,
    order_batch_decoder,
)
from apps.core.redis import connect_redis
from apps.core.routing import RoutingRecord, pack_record
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.router.fanout import shard_of
from apps.router.main import consume
from tests.fixtures.factories import make_signal
from tests.fixtures.waiting import wait_for


def make_record(i: int, channel: str, **overrides: Any) -> RoutingRecord:
    fields: dict[str, Any] = {
        "subscription_id": f"sub{i:06}",
        "channel_id": channel,
        "subscriber_id": f"user{i}",
        "broker_kind": "deriv",
        "broker_account_id": f"ba{i % 20}",
        "credentials_ref": f"ba{i % 20}",
        "currency": "USD",
        "stake_mode": "fixed",
        "stake": Decimal("2"),
        "max_stake": Decimal("10"),
        "expires_at": int(time.time()) + 3600,
    }
    fields.update(overrides)
    return RoutingRecord(**fields)


async def store(settings: Settings, channel: str, records: list[RoutingRecord]) -> None:
    redis = connect_redis(settings.redis_url)
    await redis.hset(  # type: ignore[misc]
        Topology(settings.namespace).routing_key(channel),
        mapping={r.subscription_id: pack_record(r) for r in records},
    )
    await redis.aclose()


async def send(nc: NATS, topology: Topology, signal: Signal, msg_id: str | None = None) -> None:
    await nc.jetstream().publish(
        topology.signal_subject(signal.channel_id),
        encode(signal),
        headers={"Nats-Msg-Id": msg_id or signal.signal_id},
    )


@contextlib.asynccontextmanager
async def running_router(settings: Settings) -> AsyncIterator[None]:
    stop = asyncio.Event()
    ready = asyncio.Event()

    async def on_ready() -> None:
        ready.set()

    task = asyncio.create_task(consume(settings, stop, on_ready))
    await asyncio.wait_for(ready.wait(), 30)
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def stream_messages(nc: NATS, stream: str) -> list[Any]:
    js = nc.jetstream()
    info = await js.stream_info(stream)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        with contextlib.suppress(Exception):
            out.append(await js.get_msg(stream, seq))
    return out


async def orders_and_events(
    nc: NATS, topology: Topology
) -> tuple[list[OrderBatch], list[ExecutionBatch], list[FanoutStarted]]:
    orders = [
        order_batch_decoder.decode(m.data)
        for m in await stream_messages(nc, topology.stream("ORDERS"))
    ]
    events = [
        execution_event_decoder.decode(m.data)
        for m in await stream_messages(nc, topology.stream("EXECUTIONS"))
    ]
    batches = [e for e in events if isinstance(e, ExecutionBatch)]
    fanouts = [e for e in events if isinstance(e, FanoutStarted)]
    return orders, batches, fanouts


async def test_a_signal_becomes_one_order_or_refusal_per_subscription(
    nc: NATS, settings: Settings
) -> None:
    topology = Topology(settings.namespace)
    records = [make_record(i, "ch1") for i in range(300)]
    records[0] = make_record(0, "ch1", paused=True)
    records[1] = make_record(1, "ch1", assets=("GBPUSD",))
    records[2] = make_record(2, "ch1", stake_mode="multiplier", stake=Decimal("3"))
    records[3] = make_record(3, "ch1", stake_mode="percent", stake=Decimal("2"))
    await store(settings, "ch1", records)
    redis = connect_redis(settings.redis_url)
    await redis.hset(topology.balances_key(), "ba3", "200")  # type: ignore[misc]
    await redis.aclose()
    signal = make_signal("ch1")

    async with running_router(replace(settings, order_group_size=50)):
        await send(nc, topology, signal)

        async def all_routed() -> bool:
            orders, _, _ = await orders_and_events(nc, topology)
            return sum(len(b.orders) for b in orders) == 298

        await wait_for(all_routed, what="every order routed")
    orders, refusals, fanouts = await orders_and_events(nc, topology)
    flat = {o.subscription_id: o for b in orders for o in b.orders}
    assert len(flat) == 298 and len(orders) == 6
    assert flat["sub000002"].stake == Decimal("10.00")  # 3 x 10 capped at max_stake 10
    assert flat["sub000003"].stake == Decimal("4.00")  # 2 % of 200
    assert flat["sub000100"].order_id == f"{signal.signal_id}.sub000100"
    assert {e.subscription_id: e.reason for b in refusals for e in b.executions} == {
        "sub000000": "subscription paused",
        "sub000001": "asset EURUSD is not in the subscription's allow-list",
    }
    assert [(f.total, f.shard, f.shards) for f in fanouts] == [(300, 0, 1)]


async def test_a_redelivered_signal_publishes_no_duplicate_orders(
    nc: NATS, settings: Settings
) -> None:
    topology = Topology(settings.namespace)
    await store(settings, "ch2", [make_record(i, "ch2") for i in range(120)])
    signal = make_signal("ch2")
    async with running_router(replace(settings, order_group_size=1)):
        await send(nc, topology, signal)
        # The same signal again, as a redelivery would present it to a router.
        await send(nc, topology, signal, msg_id=f"{signal.signal_id}-again")

        async def both_handled() -> bool:
            info = await nc.jetstream().consumer_info(topology.stream("SIGNALS"), "router")
            return info.num_ack_pending == 0 and info.num_pending == 0

        await wait_for(both_handled, what="both signals handled")
    orders, _, fanouts = await orders_and_events(nc, topology)
    assert sorted(o.subscription_id for b in orders for o in b.orders) == sorted(
        f"sub{i:06}" for i in range(120)
    )
    assert len(fanouts) == 1


async def test_a_large_channel_is_fanned_out_in_shards_exactly_once(
    nc: NATS, settings: Settings
) -> None:
    topology = Topology(settings.namespace)
    await store(settings, "big", [make_record(i, "big") for i in range(1000)])
    signal = make_signal("big")
    async with running_router(replace(settings, router_shard_size=300, order_group_size=100)):
        await send(nc, topology, signal)

        async def all_routed() -> bool:
            orders, _, fanouts = await orders_and_events(nc, topology)
            return sum(len(b.orders) for b in orders) >= 1000 and len(fanouts) >= 4

        await wait_for(all_routed, what="every order and every shard's start routed")
        await asyncio.sleep(0.3)  # room for a duplicate, which the next lines would see
    orders, _, fanouts = await orders_and_events(nc, topology)
    ids = [o.subscription_id for b in orders for o in b.orders]
    assert len(ids) == len(set(ids)) == 1000
    assert sorted(f.shard for f in fanouts) == [0, 1, 2, 3]
    assert sum(f.total for f in fanouts) == 1000 and {f.shards for f in fanouts} == {4}


async def test_the_shards_of_a_signal_share_one_read_of_the_channel(
    nc: NATS, settings: Settings
) -> None:
    """One router taking every shard of a signal reads the channel's routing hash once,
    not once per shard (a 100k channel's hash is ~170 ms per read)."""
    topology = Topology(settings.namespace)
    await store(settings, "wide", [make_record(i, "wide") for i in range(1000)])
    redis = connect_redis(settings.redis_url)

    async def hgetall_calls() -> int:
        stats = await redis.info("commandstats")
        return int(stats.get("cmdstat_hgetall", {}).get("calls", 0))

    try:
        before = await hgetall_calls()
        async with running_router(replace(settings, router_shard_size=300, order_group_size=100)):
            await send(nc, topology, make_signal("wide"))

            async def all_routed() -> bool:
                orders, _, fanouts = await orders_and_events(nc, topology)
                return sum(len(b.orders) for b in orders) >= 1000 and len(fanouts) >= 4

            await wait_for(all_routed, what="every order and every shard's start routed")
            await asyncio.sleep(0.3)  # room for another read, which the next line would see
        assert await hgetall_calls() - before == 1
    finally:
        await redis.aclose()
    orders, _, fanouts = await orders_and_events(nc, topology)
    ids = [o.subscription_id for b in orders for o in b.orders]
    assert len(ids) == len(set(ids)) == 1000
    # Each shard routed its own part: the partition is the one every router computes.
    assert sorted((f.shard, f.total) for f in fanouts) == sorted(
        (k, sum(shard_of(f"sub{i:06}", 4) == k for i in range(1000))) for k in range(4)
    )


async def test_trades_per_day_limit_counts_each_signal_once(nc: NATS, settings: Settings) -> None:
    topology = Topology(settings.namespace)
    await store(settings, "lim", [make_record(1, "lim", max_trades_per_day=1)])
    first, second = make_signal("lim"), make_signal("lim")
    async with running_router(settings):
        await send(nc, topology, first)

        async def first_routed() -> bool:
            orders, _, _ = await orders_and_events(nc, topology)
            return bool(orders)

        # The router works signals concurrently: the second is sent once the first took
        # the day's trade, so which one takes it does not depend on the machine's load.
        await wait_for(first_routed, what="the first signal's order")
        await send(nc, topology, first, msg_id="redelivered-first")
        await send(nc, topology, second)

        async def three_handled() -> bool:
            info = await nc.jetstream().consumer_info(topology.stream("SIGNALS"), "router")
            return info.delivered.consumer_seq >= 3 and info.num_ack_pending == 0

        await wait_for(three_handled, what="three signals handled")
    orders, refusals, _ = await orders_and_events(nc, topology)
    assert [b.signal_id for b in orders] == [first.signal_id]
    assert [(b.signal_id, b.executions[0].reason) for b in refusals] == [
        (second.signal_id, "max trades per day reached (1)")
    ]


async def test_a_stale_signal_places_nothing(nc: NATS, settings: Settings) -> None:
    topology = Topology(settings.namespace)
    await store(settings, "old", [make_record(i, "old") for i in range(5)])
    async with running_router(settings):
        await send(nc, topology, make_signal("old", valid_for=-1))

        async def refused() -> bool:
            _, refusals, _ = await orders_and_events(nc, topology)
            return sum(len(b.executions) for b in refusals) == 5

        await wait_for(refused, what="the refusal reported")
    orders, refusals, _ = await orders_and_events(nc, topology)
    assert orders == []
    assert {e.state.value for b in refusals for e in b.executions} == {"expired"}


def test_messages_are_json_readable_by_the_nats_cli() -> None:
    signal = make_signal("c")
    assert msgspec.json.decode(encode(signal))["direction"] == "PUT"
