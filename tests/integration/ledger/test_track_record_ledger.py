"""The ledger keeps each channel's track record as its signals settle: real NATS, Valkey
and the MongoDB wire server, the ledger service as it runs.

Signals with several subscribers, refusals and a signal nobody could take settle; the
channel's ``track`` must be what the one definition (apps.core.track_record) makes of the
signals themselves, and a redelivered batch must count nothing twice."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

from msgspec.structs import replace
from nats.aio.client import Client as NATS

from apps.core.db import connect_db
from apps.core.messages import (
    Execution,
    ExecutionBatch,
    ExecutionState,
    FanoutStarted,
    Outcome,
    Signal,
    encode,
)
from apps.core.records import record_of
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.core.track_record import DAY, Settlement, delays_of, result_of, windows
from apps.ledger.main import run
from apps.ledger.track import TRACK_MAX_AGE, TrackKeeper
from tests.fixtures.factories import make_signal
from tests.fixtures.waiting import wait_for

CHANNEL = "chTrack"


def order(s: Signal, k: int, state: ExecutionState, at: float, **extra: object) -> Execution:
    return Execution(
        order_id=f"{s.signal_id}.sub{k}",
        signal_id=s.signal_id,
        channel_id=s.channel_id,
        subscription_id=f"sub{k}",
        user_id=f"u{k}",
        state=state,
        at=at,
        broker_kind="deriv",
        **extra,  # type: ignore[arg-type]
    )


class Plan:
    """One signal: its subscribers' stakes, how many were refused, its outcome."""

    def __init__(self, s: Signal, stakes: list[str], refused: int, won: bool | None) -> None:
        self.signal = s
        self.stakes = [Decimal(x) for x in stakes]
        self.refused = refused
        self.won = won

    def events(self) -> tuple[list[Any], list[Execution]]:
        s = self.signal
        n = len(self.stakes) + self.refused
        fanout = FanoutStarted(
            signal_id=s.signal_id,
            channel_id=s.channel_id,
            shard=0,
            shards=1,
            total=n,
            signal_created_at=s.created_at,
            at=s.created_at,
        )
        placed = [
            order(
                s, k, ExecutionState.PLACED, s.created_at + 0.1, stake=st, latency_ms=80.0 + k * 40
            )
            for k, st in enumerate(self.stakes)
        ]
        refused = [
            order(s, len(self.stakes) + k, ExecutionState.REJECTED, s.created_at + 0.1, reason="no")
            for k in range(self.refused)
        ]
        settled = []
        if self.won is not None:
            for k, st in enumerate(self.stakes):
                profit = (st * Decimal("0.87")).quantize(Decimal("0.01")) if self.won else -st
                outcome = Outcome.WON if self.won else Outcome.LOST
                # Subscribers settle in reverse order: the last one's order settles first.
                at = s.created_at + 60 + (len(self.stakes) - k)
                settled.append(
                    order(
                        s, k, ExecutionState.SETTLED, at, stake=st, outcome=outcome, profit=profit
                    )
                )
        batch = ExecutionBatch(
            signal_id=s.signal_id, channel_id=s.channel_id, executions=placed + refused
        )
        return [fanout, batch], settled

    def expected(self) -> Any:
        first = None
        s = self.signal
        if self.won is not None:
            k = len(self.stakes) - 1  # settled first
            st = self.stakes[k]
            first = Settlement(
                order_id=f"{s.signal_id}.sub{k}",
                at=s.created_at + 61,
                outcome="won" if self.won else "lost",
                profit=(st * Decimal("0.87")).quantize(Decimal("0.01")) if self.won else -st,
                stake=st,
            )
        return result_of(
            signal_id=s.signal_id,
            created_at=s.created_at,
            stake=s.stake,
            asset=s.asset,
            settlement=first,
            delays=delays_of(80.0 + k * 40 for k in range(len(self.stakes))),
        )


async def test_the_channels_track_is_the_definitions_numbers_and_redelivery_counts_once(
    nc: NATS, settings: Settings
) -> None:
    topology = Topology(settings.namespace)
    js = nc.jetstream()
    plans = [
        Plan(make_signal(CHANNEL, stake="10"), ["2", "5", "20", "1"], refused=2, won=True),
        Plan(
            make_signal(CHANNEL, stake="10", asset="GBPUSD"), ["3", "3", "7"], refused=0, won=False
        ),
        Plan(make_signal(CHANNEL, stake="20"), ["4", "10"], refused=1, won=True),
        Plan(make_signal(CHANNEL, stake="5"), ["1"] * 6, refused=3, won=False),
        # Every subscriber refused: sent, never settled.
        Plan(make_signal(CHANNEL, stake="5"), [], refused=4, won=None),
    ]
    other = Plan(make_signal("chOther", stake="10"), ["2"], refused=0, won=False)
    for p in [*plans, other]:
        s = p.signal
        await js.publish(
            topology.signal_subject(s.channel_id), encode(s), headers={"Nats-Msg-Id": s.signal_id}
        )
    settlements: list[ExecutionBatch] = []
    for p in [*plans, other]:
        first, settled = p.events()
        for event in first:
            await js.publish(
                topology.execution_subject(p.signal.channel_id, p.signal.signal_id), encode(event)
            )
        if settled:
            settlements.append(
                ExecutionBatch(
                    signal_id=p.signal.signal_id, channel_id=p.signal.channel_id, executions=settled
                )
            )
    # Each settlement batch is delivered twice, in two halves the second time.
    for batch in settlements:
        subject = topology.execution_subject(batch.channel_id, batch.signal_id)
        await js.publish(subject, encode(batch))
        half = len(batch.executions) // 2 or 1
        for part in (batch.executions[half:], batch.executions[:half]):
            again = ExecutionBatch(
                signal_id=batch.signal_id, channel_id=batch.channel_id, executions=part
            )
            await js.publish(subject, encode(again))

    want = windows([p.expected() for p in plans], time.time())
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, stop))
    mongo, _ = connect_db(settings.mongodb_uri, settings.mongodb_database)
    db = mongo[settings.mongodb_database]
    try:

        async def settled_track() -> dict[str, Any] | None:
            doc = await db.channel_stats.find_one({"_id": CHANNEL})
            track = (doc or {}).get("track")
            if not track or track["all"]["settled"] < 4 or track["all"]["signals"] < 5:
                return None
            return doc

        async def all_acked() -> bool:
            info = await js.consumer_info(topology.stream("EXECUTIONS"), "ledger")
            return info.num_pending == 0 and info.num_ack_pending == 0

        await wait_for(all_acked, what="the ledger to ack every execution")
        doc = await wait_for(
            settled_track, what="the channel's track record with 4 settled signals"
        )
        results = {r["_id"]: r async for r in db.signal_results.find({"channel_id": CHANNEL})}
        other_doc = await db.channel_stats.find_one({"_id": "chOther"})
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        mongo.close()

    track = doc["track"]
    assert set(track) == {"7d", "30d", "90d", "all"}
    for name in track:
        assert track[name] == want[name].doc(), name
    # 4 settled signals, 2 won: 50 %, whatever the 15 orders settled and 10 refused say.
    assert (track["all"]["signals"], track["all"]["won"], track["all"]["lost"]) == (5, 2, 2)
    assert track["all"]["win_rate"] == 0.5
    # Profit at the signals' own stakes: +8.70 -10 +17.40 -5.
    assert track["all"]["profit"] == "11.10"
    assert track["all"]["max_drawdown"] == "10.00"
    assert track["all"]["avg_delay_ms"] is not None and track["all"]["p95_delay_ms"] is not None
    assert doc["record_days"] == 0 and doc["assets"] == ["EURUSD", "GBPUSD"]
    assert doc["first_signal_at"] == min(p.signal.created_at for p in plans)
    assert "win_rate" not in doc
    # Each signal's own result, as the signal history shows it.
    first = results[plans[0].signal.signal_id]
    assert (first["outcome"], first["profit_at_stake"]) == ("won", "8.70")
    assert results[plans[4].signal.signal_id]["outcome"] is None
    # Another channel's signals stay out of this record.
    assert other_doc is not None and other_doc["track"]["all"]["signals"] == 1


async def test_time_moves_signals_out_of_the_short_windows(settings: Settings) -> None:
    """Windows move with time: a record older than TRACK_MAX_AGE is recomputed without
    any execution arriving, and a signal sent 6.99 days ago leaves the 7-day window."""
    mongo, _ = connect_db(settings.mongodb_uri, settings.mongodb_database)
    db = mongo[settings.mongodb_database]
    keeper = TrackKeeper(db)
    await keeper.ensure_indexes()
    sent = time.time() - 6.99 * DAY
    s = replace(make_signal("chAging", stake="10"), created_at=sent, valid_until=sent + 30)
    try:
        await keeper.record_signals([{"_id": s.signal_id, **record_of(s).model_dump_doc()}])
        doc = await db.channel_stats.find_one({"_id": "chAging"})
        assert doc is not None and doc["track"]["7d"]["signals"] == 1
        # Fresh records are left alone; an hour later the record is recomputed.
        assert await keeper.refresh_stale(now=time.time()) == 0
        later = time.time() + 2 * TRACK_MAX_AGE
        assert await keeper.refresh_stale(now=later) == 1
        doc = await db.channel_stats.find_one({"_id": "chAging"})
        assert doc is not None
        assert (doc["track"]["7d"]["signals"], doc["track"]["30d"]["signals"]) == (0, 1)
        assert doc["track_updated_at"] == later
    finally:
        mongo.close()


async def test_the_earliest_settlement_decides_whatever_the_order_they_arrive_in(
    settings: Settings,
) -> None:
    mongo, _ = connect_db(settings.mongodb_uri, settings.mongodb_database)
    db = mongo[settings.mongodb_database]
    keeper = TrackKeeper(db)
    s = make_signal("chOrder", stake="10")
    at = s.created_at + 60

    def settled(k: int, when: float, won: bool) -> Execution:
        return order(
            s,
            k,
            ExecutionState.SETTLED,
            when,
            stake=Decimal("4"),
            outcome=Outcome.WON if won else Outcome.LOST,
            profit=Decimal("3.40") if won else Decimal("-4"),
        )

    late, early, tie = settled(1, at + 5, False), settled(2, at, True), settled(3, at, False)
    touched = {s.signal_id: s.channel_id}
    try:
        await keeper.record_signals([{"_id": s.signal_id, **record_of(s).model_dump_doc()}])
        for batch in ([late], [tie], [early], [late, tie]):  # sub2 < sub3 breaks the tie
            await keeper.update(touched, {}, batch)
        result = await db.signal_results.find_one({"_id": s.signal_id})
        assert result is not None
        assert result["first"]["order_id"] == early.order_id
        assert (result["outcome"], result["profit_at_stake"]) == ("won", "8.50")
        doc = await db.channel_stats.find_one({"_id": "chOrder"})
        assert doc is not None and doc["track"]["all"]["won"] == 1
    finally:
        mongo.close()
