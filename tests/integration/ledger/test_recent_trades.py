"""The users' recent trades in Redis (apps.ledger.recent), written by the ledger's book
before MongoDB, and the order documents' trade detail."""

from __future__ import annotations

import time
from decimal import Decimal

import msgspec

from apps.core.db import connect_db
from apps.core.messages import Direction, Execution, ExecutionBatch, ExecutionState, Outcome
from apps.core.recent_trades import decode_entry, encode_entry, recent_key
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.ledger.book import Book
from apps.ledger.recent import RecentTrades


def trade(signal: str, user: str, state: ExecutionState, **extra: object) -> Execution:
    return Execution(
        order_id=f"{signal}.sub-{user}",
        signal_id=signal,
        channel_id="ch1",
        subscription_id=f"sub-{user}",
        user_id=user,
        state=state,
        at=time.time(),
        broker_kind="deriv",
        stake=Decimal("2"),
        currency="USD",
        asset="R_100",
        direction=Direction.CALL,
        expiry_seconds=60,
        **extra,  # type: ignore[arg-type]
    )


def batch(signal: str, *executions: Execution) -> ExecutionBatch:
    return ExecutionBatch(signal_id=signal, channel_id="ch1", executions=list(executions))


PLACED = {
    "contract_id": "77",
    "buy_price": Decimal("2"),
    "payout": Decimal("3.90"),
    "latency_ms": 41.5,
    "expiry_at": 1_900_000_060.0,
    "balance_after": Decimal("98"),
}
SETTLED = {
    **PLACED,
    "outcome": Outcome.WON,
    "profit": Decimal("1.90"),
    "entry_spot": Decimal("1234.56"),
    "exit_spot": Decimal("1234.61"),
    "balance_after": Decimal("101.90"),
}


async def test_a_trade_is_one_entry_from_placement_to_settlement(settings: Settings) -> None:
    redis = connect_redis(settings.redis_url)
    mongo, _ = connect_db(settings.mongodb_uri, settings.mongodb_database)
    db = mongo[settings.mongodb_database]
    topology = Topology(settings.namespace)
    book = Book(redis, db, topology)
    placed = trade("SIG1", "u1", ExecutionState.PLACED, **PLACED)
    settled = trade("SIG1", "u1", ExecutionState.SETTLED, **SETTLED)
    rejected = trade("SIG2", "u1", ExecutionState.REJECTED, reason="subscription paused")
    try:
        # Redis only: the trade is in the fast store before MongoDB is written.
        await book.record([batch("SIG1", placed), batch("SIG2", rejected)])
        assert await db["orders"].find_one({"_id": placed.order_id}) is None
        assert await book.recent.of_user("u1") == [placed, rejected]  # oldest signal first

        # Settled, then the placement redelivered: the placement and its settlement stay
        # side by side, once each.
        await book.apply([batch("SIG1", settled), batch("SIG1", placed), batch("SIG1", settled)])
        assert await book.recent.of_user("u1") == [placed, settled, rejected]
        assert await book.recent.of_user("nobody") == []
        ttl = await redis.ttl(recent_key(topology, "u1"))
        assert 0 < ttl <= book.recent.ttl

        # The order document carries the trade's detail, the settlement's word last.
        doc = await db["orders"].find_one({"_id": placed.order_id})
        assert doc is not None
        assert doc["asset"] == "R_100" and doc["direction"] == "CALL"
        assert doc["expiry_seconds"] == 60 and doc["expiry_at"] == 1_900_000_060.0
        assert (doc["entry_spot"], doc["exit_spot"]) == ("1234.56", "1234.61")
        assert doc["contract_id"] == "77" and doc["payout"] == "3.90"
        assert doc["outcome"] == "won" and doc["profit"] == "1.90"
        # The balances after the buy and after the settlement, whatever came last.
        assert (doc["balance_after_buy"], doc["balance_after"]) == ("98", "101.90")
    finally:
        await redis.aclose()
        mongo.close()


async def test_each_user_keeps_their_newest_trades(settings: Settings) -> None:
    redis = connect_redis(settings.redis_url)
    topology = Topology(settings.namespace)
    recent = RecentTrades(redis, topology, keep=10)
    try:
        # Signal ids sort by time: SIG00 is the oldest. Two users, written together.
        for n in range(30):
            await recent.write(
                [
                    trade(f"SIG{n:02d}", "u1", ExecutionState.PLACED, **PLACED),
                    trade(f"SIG{n:02d}", "u2", ExecutionState.PLACED, **PLACED),
                ]
            )
            # Every fourth trade settles: two fields for one order.
            if n % 4 == 0:
                await recent.write([trade(f"SIG{n:02d}", "u1", ExecutionState.SETTLED, **SETTLED)])
        for user in ("u1", "u2"):
            kept = sorted({t.signal_id for t in await recent.of_user(user)})
            assert 10 <= len(kept) <= 2 * 10 + 10 // 5 + 1  # the bound, with its slack
            assert kept == [f"SIG{n:02d}" for n in range(30 - len(kept), 30)]  # the newest
    finally:
        await redis.aclose()


def test_entries_of_other_versions() -> None:
    """Fields are only appended: an older entry (fewer fields) still reads, a newer one
    (more fields) is left to MongoDB rather than misread."""
    placed = trade("SIG1", "u1", ExecutionState.PLACED, **PLACED)
    values = list(msgspec.structs.astuple(placed))
    older = msgspec.msgpack.encode(values[:-3])  # before the last three fields existed
    assert decode_entry(older) == msgspec.structs.replace(
        placed, entry_spot=None, exit_spot=None, balance_after=None
    )
    assert decode_entry(msgspec.msgpack.encode([*values, "a field from later"])) is None
    assert decode_entry(b"\xc1") is None
    assert decode_entry(encode_entry(placed)) == placed
