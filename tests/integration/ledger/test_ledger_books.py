"""The ledger service against real NATS, Redis and the MongoDB wire server."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import pytest
from msgspec.structs import replace
from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import ConsumerConfig

import apps.ledger.main as ledger_main
from apps.core.db import connect_db
from apps.core.messages import (
    Execution,
    ExecutionBatch,
    ExecutionState,
    FanoutStarted,
    Outcome,
    encode,
    execution_event_decoder,
)
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.ledger.book import PER_CALL, Book, Pending
from apps.ledger.main import MongoWriter, run
from tests.fixtures.waiting import PATIENCE, wait_for


def execution(i: int, state: ExecutionState, **extra: object) -> Execution:
    return Execution(
        order_id=f"sig1.sub{i}",
        signal_id="sig1",
        channel_id="ch1",
        subscription_id=f"sub{i}",
        user_id=f"u{i}",
        state=state,
        at=time.time(),
        broker_kind="deriv",
        **extra,  # type: ignore[arg-type]
    )


async def test_books_are_exact_under_redelivery_and_settle_outcomes(
    nc: NATS, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MongoDB is written because a fetch found the stream empty, not after WRITE_AT_MOST.
    monkeypatch.setattr(ledger_main, "WRITE_AT_MOST", 600.0)
    topology = Topology(settings.namespace)
    js = nc.jetstream()
    subject = topology.execution_subject("ch1", "sig1")
    now = time.time()
    placed = [
        execution(i, ExecutionState.PLACED, stake=Decimal("2"), latency_ms=40.0 + i)
        for i in range(8)
    ]
    events = [
        FanoutStarted(
            signal_id="sig1",
            channel_id="ch1",
            shard=0,
            shards=1,
            total=10,
            signal_created_at=now - 1,
            at=now,
        ),
        ExecutionBatch(signal_id="sig1", channel_id="ch1", executions=placed),
        ExecutionBatch(
            signal_id="sig1",
            channel_id="ch1",
            executions=[
                execution(8, ExecutionState.REJECTED, reason="subscription paused"),
                execution(9, ExecutionState.EXPIRED, reason="signal expired before routing"),
            ],
        ),
        # A worker re-reports (redelivery) and a later state arrives for a final order.
        ExecutionBatch(signal_id="sig1", channel_id="ch1", executions=placed[:3]),
        ExecutionBatch(
            signal_id="sig1",
            channel_id="ch1",
            executions=[execution(0, ExecutionState.FAILED, reason="late duplicate")],
        ),
        ExecutionBatch(
            signal_id="sig1",
            channel_id="ch1",
            executions=[
                execution(0, ExecutionState.SETTLED, outcome=Outcome.WON, profit=Decimal("1.90")),
                execution(1, ExecutionState.SETTLED, outcome=Outcome.LOST, profit=Decimal("-2")),
                execution(1, ExecutionState.SETTLED, outcome=Outcome.LOST, profit=Decimal("-2")),
            ],
        ),
    ]
    for event in events:
        await js.publish(subject, encode(event))

    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, stop))
    mongo, _ = connect_db(settings.mongodb_uri, settings.mongodb_database)
    db = mongo[settings.mongodb_database]
    try:

        async def both_outcomes() -> dict[str, Any] | None:
            stats = await db.signal_stats.find_one({"_id": "sig1"})
            return stats if stats and stats.get("lost") == 1 and stats.get("won") == 1 else None

        stats = await wait_for(both_outcomes, what="one loss and one win in the signal's stats")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

    assert stats["counts"] == {
        "total": 10,
        "placed": 8,
        "rejected": 1,
        "expired": 1,
        "failed": 0,
        "unknown": 0,
    }
    assert stats["done"] is True
    assert stats["pnl"] == "-0.10"
    assert stats["latency_ms"]["first_placed"] is not None
    orders = {d["_id"]: d async for d in db.orders.find({"signal_id": "sig1"})}
    assert len(orders) == 10
    assert orders["sig1.sub0"]["state"] == "placed"  # the late duplicate changed nothing
    assert orders["sig1.sub0"]["outcome"] == "won" and orders["sig1.sub0"]["profit"] == "1.90"
    assert orders["sig1.sub8"]["reason"] == "subscription paused"
    channel = await db.channel_stats.find_one({"_id": "ch1"})
    assert channel is not None
    assert (channel["signals"], channel["placed"], channel["won"], channel["lost"]) == (1, 8, 1, 1)
    assert channel["pnl"] == "-0.10"
    # No per-trade win rate: the one win rate is per signal, in the track record.
    assert "win_rate" not in channel
    # The loss counts against sub1's daily loss limit.
    redis = connect_redis(settings.redis_url)
    exposure = topology.risk_key("sub1", time.time(), "exposure")
    assert await redis.hget(exposure, "lost") == b"200"
    await redis.aclose()
    mongo.close()


async def test_executions_in_redis_but_not_yet_in_mongodb_are_written_on_redelivery(
    nc: NATS, settings: Settings
) -> None:
    """The ledger stopped between its two stores: Redis counted the batch, MongoDB has
    nothing. The redelivered batch must reach MongoDB without counting twice."""
    topology = Topology(settings.namespace)
    placed = [execution(i, ExecutionState.PLACED, stake=Decimal("1")) for i in range(5)]
    batch = ExecutionBatch(signal_id="sig1", channel_id="ch1", executions=placed)
    redis = connect_redis(settings.redis_url)
    mongo, _ = connect_db(settings.mongodb_uri, settings.mongodb_database)
    db = mongo[settings.mongodb_database]
    await Book(redis, db, topology).record([batch])  # Redis only, as if it died here
    await nc.jetstream().publish(topology.execution_subject("ch1", "sig1"), encode(batch))

    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, stop))
    try:

        async def all_five() -> bool:
            return int(await db.orders.count_documents({"signal_id": "sig1"})) >= 5

        await wait_for(all_five, what="the redelivered batch in MongoDB")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

    states = {d["_id"]: d["state"] async for d in db.orders.find({"signal_id": "sig1"})}
    assert states == {e.order_id: "placed" for e in placed}
    stats = await db.signal_stats.find_one({"_id": "sig1"})
    assert stats is not None and stats["counts"]["placed"] == 5  # not 10
    await redis.aclose()
    mongo.close()


async def test_mongodb_is_written_once_a_burst_of_executions_is_over(settings: Settings) -> None:
    """While executions keep arriving, MongoDB waits (its CPU would compete with the
    fan-out's); a pause, the bound on the wait, a full queue or closing writes what is
    queued. Each writer below waits a minute for whatever should not trigger it."""
    redis = connect_redis(settings.redis_url)
    mongo, _ = connect_db(settings.mongodb_uri, settings.mongodb_database)
    db = mongo[settings.mongodb_database]
    book = Book(redis, db, Topology(settings.namespace))
    serial = iter(range(10_000))
    queued = 0

    async def put(writer: MongoWriter, n: int) -> None:
        nonlocal queued
        batch = [execution(next(serial), ExecutionState.PLACED) for _ in range(n)]
        events = [ExecutionBatch(signal_id="sig1", channel_id="ch1", executions=batch)]
        await writer.put(await book.record(events), [], n)
        queued += n

    async def in_mongodb() -> int:
        return int(await db.orders.count_documents({"signal_id": "sig1"}))

    async def until_all_written() -> None:
        async def all_written() -> bool:
            return await in_mongodb() >= queued

        await wait_for(all_written, what=f"all {queued} queued executions in MongoDB")

    tasks: list[asyncio.Task[None]] = []

    def start(at_most: float = 60.0, write_at: int = 10**6) -> MongoWriter:
        writer = MongoWriter(book, at_most=at_most, write_at=write_at)
        tasks.append(asyncio.create_task(writer.run()))
        return writer

    try:
        # A burst is written once the reader finds the stream empty, all together; pauses
        # between batches do not end it (a niced ledger pauses while the fan-out runs).
        writer = start()
        for pause in (0.1, 0.1, 1.0, 0.1, 1.0, 0.1, 0.1, 0.1, 0.1, 0.1):
            await put(writer, 3)
            await asyncio.sleep(pause)
            assert await in_mongodb() == 0
        await writer.drained()
        await until_all_written()
        # A burst that does not end is written `at_most` after its first batch.
        writer = start(at_most=1.0)
        started = time.monotonic()
        while await in_mongodb() == 30:
            assert time.monotonic() - started < PATIENCE, "an endless burst is never written"
            await put(writer, 2)
            await asyncio.sleep(0.1)
        assert time.monotonic() - started >= 1.0
        await writer.close()  # closing writes the rest at once
        await asyncio.wait_for(tasks[-1], 15)
        assert await in_mongodb() == queued
        # A queue of `write_at` executions is written at once.
        await put(start(write_at=5), 5)
        await until_all_written()
    finally:
        for task in tasks:
            task.cancel()
        await redis.aclose()
        mongo.close()


async def test_one_batch_that_repeats_orders_counts_each_order_once(settings: Settings) -> None:
    """The book reads every order's state once per script call, and a long batch takes
    several calls: what an earlier execution of the batch changed must count for the
    later ones, in the same call or not."""
    redis = connect_redis(settings.redis_url)
    mongo, _ = connect_db(settings.mongodb_uri, settings.mongodb_database)
    book = Book(redis, mongo[settings.mongodb_database], Topology(settings.namespace))
    settled = {"outcome": Outcome.WON, "profit": Decimal("0.90")}
    others = [execution(i, ExecutionState.PLACED) for i in range(100, 100 + PER_CALL)]
    executions = [
        execution(1, ExecutionState.PLACED),
        *others,  # the rest comes in the next call
        execution(1, ExecutionState.PLACED),  # a duplicate
        execution(2, ExecutionState.FAILED, reason="timeout"),
        execution(2, ExecutionState.PLACED),  # the broker sold it after all
        execution(3, ExecutionState.REJECTED, reason="paused"),
        execution(3, ExecutionState.FAILED, reason="late"),  # the first state wins
        execution(1, ExecutionState.SETTLED, **settled),
        execution(1, ExecutionState.SETTLED, **settled),
    ]
    pending = await book.record(
        [ExecutionBatch(signal_id="sig1", channel_id="ch1", executions=executions)]
    )
    stats = await book.signal_counts("sig1")
    counts = {k: v for k, v in stats["counts"].items() if v}
    assert counts == {"placed": 2 + len(others), "rejected": 1}
    assert (stats["won"], stats["pnl"]) == (1, "0.90")
    # MongoDB gets each execution that was what the book held when it came, in order:
    # the late FAILED of order 3 is not written.
    written = [e.state.value for e in pending.executions]
    assert written[: 1 + len(others)] == ["placed"] * (1 + len(others))
    rest = ["placed", "failed", "placed", "rejected", "settled", "settled"]
    assert written[1 + len(others) :] == rest
    await redis.aclose()
    mongo.close()


async def test_a_signal_counts_its_orders_per_broker_kind(settings: Settings) -> None:
    """Orders of one signal go to Deriv and IQ Option workers; each kind's counts follow its
    own orders exactly, under the same redelivery and state rules as the totals."""
    redis = connect_redis(settings.redis_url)
    mongo, _ = connect_db(settings.mongodb_uri, settings.mongodb_database)
    book = Book(redis, mongo[settings.mongodb_database], Topology(settings.namespace))

    def iq(i: int, state: ExecutionState, **extra: object) -> Execution:
        return replace(execution(i, state, **extra), broker_kind="iqoption")

    batches = [
        [
            execution(1, ExecutionState.PLACED),
            iq(2, ExecutionState.FAILED, reason="reply lost"),
            iq(3, ExecutionState.REJECTED, reason="no legal expiry"),
        ],
        [
            execution(1, ExecutionState.PLACED),  # redelivered
            iq(2, ExecutionState.PLACED),  # the broker sold it after all
            iq(4, ExecutionState.PLACED),
        ],
    ]
    for executions in batches:
        await book.record(
            [ExecutionBatch(signal_id="sig1", channel_id="ch1", executions=executions)]
        )
    stats = await book.signal_counts("sig1")
    by_kind = {kind: {k: v for k, v in c.items() if v} for kind, c in stats["brokers"].items()}
    assert by_kind == {"deriv": {"placed": 1}, "iqoption": {"placed": 2, "rejected": 1}}
    assert {k: v for k, v in stats["counts"].items() if v} == {"placed": 3, "rejected": 1}
    await redis.aclose()
    mongo.close()


async def test_a_write_longer_than_ack_wait_is_not_redelivered(
    nc: NATS, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stand-in took 33 - 48 s for 10,000 orders, longer than the ledger's AckWait:
    the messages being written must say they are still being worked on, or JetStream
    hands the whole batch out again and MongoDB is written twice."""
    topology = Topology(settings.namespace)
    js = nc.jetstream()
    subject = topology.execution_subject("ch1", "sig1")
    batch = [execution(i, ExecutionState.PLACED) for i in range(3)]
    await js.publish(
        subject, encode(ExecutionBatch(signal_id="sig1", channel_id="ch1", executions=batch))
    )
    sub = await js.pull_subscribe(
        subject,
        durable="slow-writer",
        stream=topology.stream("EXECUTIONS"),
        config=ConsumerConfig(ack_wait=1.0),
    )
    msgs = await sub.fetch(1, timeout=5)
    redis = connect_redis(settings.redis_url)
    mongo, _ = connect_db(settings.mongodb_uri, settings.mongodb_database)
    book = Book(redis, mongo[settings.mongodb_database], topology)
    persist = Book.persist

    async def slow_persist(self: Book, pending: Pending) -> None:
        await asyncio.sleep(3.5)  # three and a half AckWaits
        await persist(self, pending)

    monkeypatch.setattr(Book, "persist", slow_persist)
    monkeypatch.setattr(ledger_main, "PROGRESS_INTERVAL", 0.3)
    writer = MongoWriter(book)
    task = asyncio.create_task(writer.run())
    try:
        events = [execution_event_decoder.decode(m.data) for m in msgs]
        await writer.put(await book.record(events), msgs, len(batch))
        await writer.drained()  # written at once
        # A ledger keeps fetching while it writes: nothing may come back meanwhile.
        with pytest.raises((NatsTimeout, TimeoutError)):
            redelivered = await sub.fetch(1, timeout=3)
            pytest.fail(f"{len(redelivered)} message(s) redelivered while being written")
        await writer.close()
        await asyncio.wait_for(task, 15)

        # The ack is a publish the server applies on its own time: look until it has.
        async def acked() -> bool:
            info = await js.consumer_info(topology.stream("EXECUTIONS"), "slow-writer")
            return info.num_ack_pending == 0

        await wait_for(acked, what="the ack applied")
        info = await js.consumer_info(topology.stream("EXECUTIONS"), "slow-writer")
        assert (info.num_redelivered, info.num_ack_pending, info.num_pending) == (0, 0, 0)
        assert await mongo[settings.mongodb_database].orders.count_documents({}) == 3
    finally:
        task.cancel()
        await sub.unsubscribe()
        await redis.aclose()
        mongo.close()
