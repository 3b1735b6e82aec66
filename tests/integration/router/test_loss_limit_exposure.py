"""The daily loss limit's exposure in real Valkey: the router's reservations hold under
10,000 concurrent signals, and the router's and the ledger's scripts keep the same
accounting as the pure model (apps.core.exposure.Exposure)."""

from __future__ import annotations

import asyncio
import random
import time
from decimal import Decimal

from apps.core.exposure import LOST, OPEN, RELEASED, SETTLED, Exposure, to_minor
from apps.core.messages import Execution, ExecutionState, Outcome
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.ledger.risk import RiskKeeper
from apps.router.counters import DailyCounters, Verdict
from tests.fixtures.factories import make_order
from tests.unit.router.test_risk_rules import record

LIMIT = Decimal("30")
SUBSCRIPTIONS = [f"sub{k}" for k in range(4)]


async def test_ten_thousand_concurrent_signals_never_over_reserve(settings: Settings) -> None:
    redis = connect_redis(settings.redis_url)
    topology = Topology(settings.namespace)
    counters = DailyCounters(redis, topology)
    now = time.time()
    rng = random.Random(27)
    records = {s: record(s, daily_loss_limit=LIMIT, max_stake=Decimal("10")) for s in SUBSCRIPTIONS}

    async def one_signal(n: int) -> list[tuple[str, Decimal, Verdict]]:
        orders = [
            make_order(
                signal_id=f"sig{n}",
                subscription_id=s,
                stake=str(rng.choice(["0.35", "1", "2.50", "7", "10"])),
                created_at=now,
            )
            for s in SUBSCRIPTIONS
        ]
        checked = await counters.check_and_take(
            f"sig{n}", [(o, records[o.subscription_id]) for o in orders], now
        )
        return [
            (o.subscription_id, o.stake, c.verdict) for o, c in zip(orders, checked, strict=True)
        ]

    taken: dict[str, Decimal] = dict.fromkeys(SUBSCRIPTIONS, Decimal(0))
    for start in range(0, 10_000, 500):
        # Concurrent calls, as many routers' slices would make them.
        results = await asyncio.gather(*(one_signal(n) for n in range(start, start + 500)))
        for subscription_id, stake, verdict in (r for batch in results for r in batch):
            if verdict is Verdict.OK:
                taken[subscription_id] += stake
    for subscription_id in SUBSCRIPTIONS:
        key = topology.risk_key(subscription_id, now, "exposure")
        held = await redis.hget(key, OPEN)
        assert held is not None
        assert int(held) == to_minor(taken[subscription_id]) <= to_minor(LIMIT)
        # Reservations filled the room as far as the stakes allowed.
        assert taken[subscription_id] > LIMIT - 10
    # A redelivered signal takes nothing again.
    again = await one_signal(0)
    assert all(v is Verdict.OK or v is Verdict.DAILY_LOSS for _, _, v in again)
    for subscription_id in SUBSCRIPTIONS:
        key = topology.risk_key(subscription_id, now, "exposure")
        assert int(await redis.hget(key, OPEN) or 0) == to_minor(taken[subscription_id])
    await redis.aclose()


async def test_the_scripts_keep_the_models_accounting(settings: Settings) -> None:
    """Random reservations (with redeliveries), releases, placements, unknowns and
    settlements through the real scripts, mirrored on the pure model."""
    redis = connect_redis(settings.redis_url)
    topology = Topology(settings.namespace)
    counters = DailyCounters(redis, topology)
    keeper = RiskKeeper(redis, topology, mongo_db=None)
    now = time.time()
    rng = random.Random(7)
    limit = Decimal("50")
    rec = record("s1", daily_loss_limit=limit)
    model = Exposure()
    stakes: dict[str, Decimal] = {}
    key = topology.risk_key("s1", now, "exposure")

    def execution(order_id: str, state: ExecutionState, **extra: object) -> Execution:
        return Execution(
            order_id=order_id,
            signal_id=order_id.split(".")[0],
            channel_id="c1",
            subscription_id="s1",
            user_id="u1",
            state=state,
            at=now + 1,
            signal_created_at=now,
            stake=stakes[order_id],
            **extra,  # type: ignore[arg-type]
        )

    for _ in range(400):
        n = rng.randrange(20)
        order_id = f"sig{n}.s1"
        action = rng.choice(["reserve", "reserve", "release", "placed", "won", "lost", "unknown"])
        if action == "reserve":
            stake = Decimal(rng.choice(["1", "2.50", "5", "9.99"]))
            order = make_order(
                signal_id=f"sig{n}", subscription_id="s1", stake=str(stake), created_at=now
            )
            [checked] = await counters.check_and_take(f"sig{n}", [(order, rec)], now)
            taken, used = model.reserve(order_id, to_minor(stake), to_minor(limit))
            assert checked.used_minor == used
            assert (checked.verdict is Verdict.OK) == taken
            if taken:
                stakes.setdefault(order_id, stake)
            continue
        if order_id not in stakes:
            continue
        minor = to_minor(stakes[order_id])
        match action:
            case "release":
                change = execution(order_id, ExecutionState.FAILED, reason="broker said no")
                model.release(order_id)
            case "placed":
                change = execution(order_id, ExecutionState.PLACED)
                model.placed(order_id, minor)
            case "won":
                change = execution(
                    order_id, ExecutionState.SETTLED, outcome=Outcome.WON, profit=Decimal("1")
                )
                model.settle(order_id, 0)
            case "lost":
                change = execution(
                    order_id,
                    ExecutionState.SETTLED,
                    outcome=Outcome.LOST,
                    profit=-stakes[order_id],
                )
                model.settle(order_id, minor)
            case _:
                change = execution(order_id, ExecutionState.UNKNOWN, reason="no answer")
        await keeper._apply_exposure([change])
        raw = await redis.hgetall(key)
        held = {k.decode(): v.decode() for k, v in raw.items()}
        assert int(held.get(LOST, 0)) == model.lost
        assert int(held.get(OPEN, 0)) == model.open
        orders = {k[2:]: v for k, v in held.items() if k.startswith("o:")}
        assert orders == {
            k: v if v in (RELEASED, SETTLED) else str(v) for k, v in model.orders.items()
        }
    await redis.aclose()
