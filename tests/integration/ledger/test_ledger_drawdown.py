"""The ledger brings each broker account's balance forward from the executions, keeps its
peak, and pauses a subscription whose drawdown limit is reached — durably in MongoDB and
at once in its routing record — whether it sees the drawdown itself or the router's
refusal for it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from apps.core.db import connect_db
from apps.core.exposure import peak_field
from apps.core.messages import Execution, ExecutionState, Outcome
from apps.core.redis import connect_redis
from apps.core.routing import pack_record, unpack_record
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.ledger.risk import RiskKeeper
from tests.unit.router.test_risk_rules import record


def execution(n: int, sub: str, state: ExecutionState, **extra: object) -> Execution:
    return Execution(
        order_id=f"sig{n}.{sub}",
        signal_id=f"sig{n}",
        channel_id="c1",
        subscription_id=sub,
        user_id="u1",
        state=state,
        at=time.time(),
        signal_created_at=time.time(),
        stake=Decimal("100"),
        **extra,  # type: ignore[arg-type]
    )


async def test_a_drawdown_pauses_the_subscription_durably(settings: Settings) -> None:
    topology = Topology(settings.namespace)
    redis = connect_redis(settings.redis_url)
    mongo, _ = connect_db(settings.mongodb_uri, settings.mongodb_database)
    db = mongo[settings.mongodb_database]
    now = datetime.now(UTC)
    for sub, limit in (("dd", Decimal("25")), ("free", None), ("other", Decimal("50"))):
        await db.subscriptions.insert_one(
            {
                "_id": sub,
                "channel_id": "c1",
                "broker_account_id": "ba-1",
                "status": "active",
                "paused": False,
                "paused_reason": "",
                "expires_at": now + timedelta(days=1),
            }
        )
        rec = record(sub, broker_account_id="ba-1", max_drawdown_percent=limit)
        await redis.hset(topology.routing_key("c1"), sub, pack_record(rec))
    await redis.hset(topology.balances_key(), "ba-1", "1000.00")
    keeper = RiskKeeper(redis, topology, db)

    # A win first: the balance and its peak rise to 1,090.00.
    won = [
        execution(1, "dd", ExecutionState.PLACED),
        execution(1, "dd", ExecutionState.SETTLED, outcome=Outcome.WON, profit=Decimal("90")),
    ]
    await keeper.apply(won, won)
    balances = topology.balances_key()
    assert await redis.hmget(balances, ["ba-1", peak_field("ba-1")]) == [b"1090.00", b"1090.00"]

    # Three lost stakes of 100: 790.00 is 27.5 % below the peak, past the limit of 25 %.
    lost = [
        e
        for n in (2, 3, 4)
        for e in (
            execution(n, "dd", ExecutionState.PLACED),
            execution(n, "dd", ExecutionState.SETTLED, outcome=Outcome.LOST, profit=-Decimal(100)),
        )
    ]
    await keeper.apply(lost, lost)
    assert await redis.hmget(balances, ["ba-1", peak_field("ba-1")]) == [b"790.00", b"1090.00"]
    doc = await db.subscriptions.find_one({"_id": "dd"})
    assert doc["paused"] is True
    assert doc["paused_reason"].startswith(
        "maximum drawdown reached: balance 790.00 is 27.5 % below its peak 1,090.00"
    )
    routed = unpack_record(await redis.hget(topology.routing_key("c1"), "dd"))  # type: ignore[arg-type]
    assert routed.paused and routed.paused_reason == doc["paused_reason"]
    # The others' limits are not reached (or they have none).
    for sub in ("free", "other"):
        assert (await db.subscriptions.find_one({"_id": sub}))["paused"] is False

    # The router refused another subscription for its drawdown: the ledger makes it durable.
    reason = "maximum drawdown reached: balance 500.00 is 54.1 % below its peak 1,090.00"
    refused = [execution(5, "other", ExecutionState.REJECTED, reason=reason)]
    await keeper.apply([], refused)
    assert (await db.subscriptions.find_one({"_id": "other"}))["paused_reason"] == reason
    assert unpack_record(await redis.hget(topology.routing_key("c1"), "other")).paused  # type: ignore[arg-type]

    # A reported balance is taken as the broker said it.
    said = [execution(6, "free", ExecutionState.PLACED, balance_after=Decimal("1500"))]
    await keeper.apply(said, said)
    assert await redis.hmget(balances, ["ba-1", peak_field("ba-1")]) == [b"1500.00", b"1500.00"]
    await redis.aclose()
    mongo.close()
