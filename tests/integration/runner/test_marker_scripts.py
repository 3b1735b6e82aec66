"""The marker scripts on a real Valkey: each order of a group moves on its own, even
when a group lists one twice or holds orders that others changed meanwhile."""

from __future__ import annotations

import time

from apps.brokers.markers import (
    MARKER_TTL_SECONDS,
    Marker,
    MarkerBook,
    MarkerStatus,
    PendingSettlement,
    unpack_marker,
    unpack_pending,
)
from apps.core.messages import Execution, ExecutionState, Order
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.topology import Topology
from tests.fixtures.factories import make_order


def order(n: int, account: str) -> Order:
    return make_order(
        signal_id="sig1",
        subscription_id=f"sub{n}",
        account=account,
        channel_id="ch1",
        user_id=f"u{n}",
    )


def marker(status: MarkerStatus, worker: str = "w1") -> Marker:
    now = time.time()
    return Marker(status=status, worker=worker, claimed_at=now, updated_at=now)


def pending(o: Order, contract: str) -> PendingSettlement:
    placed = Execution(
        order_id=o.order_id,
        signal_id=o.signal_id,
        channel_id=o.channel_id,
        subscription_id=o.subscription_id,
        user_id=o.user_id,
        state=ExecutionState.PLACED,
        at=time.time(),
        contract_id=contract,
    )
    return PendingSettlement(
        contract_id=contract,
        owner="w1",
        placed=placed,
        broker_account_id=o.broker_account_id,
        expires_at=time.time() + 15,
    )


async def test_a_group_finishes_each_order_it_still_owns_and_no_other(settings: Settings) -> None:
    redis = connect_redis(settings.redis_url)
    topology = Topology(settings.namespace)
    book = MarkerBook(redis, topology, topology.settlements_key("deriv", "w1"))
    orders = [order(1, "acc-a"), order(2, "acc-a"), order(3, "acc-b"), order(4, "acc-a")]
    claims = await book.claim([(o, marker(MarkerStatus.INFLIGHT)) for o in orders])
    assert all(c.mine for c in claims)
    mine = {c.order.order_id: c.mine for c in claims}
    assert all(value is not None for value in mine.values())
    # Another worker moved order 2 on since we read it.
    taken = await book.compare_and_set(
        "sig1.sub2", mine["sig1.sub2"] or b"", marker(MarkerStatus.INFLIGHT, worker="w2")
    )
    assert taken is not None
    placed, rejected = marker(MarkerStatus.PLACED), marker(MarkerStatus.REJECTED)
    o1, o2, o3, o4 = orders
    done = await book.finish_many(
        [
            (o1.order_id, mine[o1.order_id] or b"", placed, pending(o1, "c1")),
            (o2.order_id, mine[o2.order_id] or b"", placed, pending(o2, "c2")),
            (o3.order_id, mine[o3.order_id] or b"", placed, pending(o3, "c3")),
            (o1.order_id, mine[o1.order_id] or b"", rejected, None),  # listed twice
            (o4.order_id, mine[o4.order_id] or b"", rejected, None),
        ]
    )
    assert done == [True, False, True, False, True]
    states = {o.order_id: unpack_marker(await book.get(o.order_id) or b"", o) for o in orders}
    assert {k: (m.status, m.worker) for k, m in states.items()} == {
        "sig1.sub1": (MarkerStatus.PLACED, "w1"),
        "sig1.sub2": (MarkerStatus.INFLIGHT, "w2"),
        "sig1.sub3": (MarkerStatus.PLACED, "w1"),
        "sig1.sub4": (MarkerStatus.REJECTED, "w1"),
    }
    for o in orders:
        assert 0 < await redis.ttl(book.key(o.order_id)) <= MARKER_TTL_SECONDS
    # Only the orders placed here have a pending settlement and a claim on their contract.
    settlements = await redis.hgetall(book.settle_key)
    assert {
        k.decode(): unpack_pending(k.decode(), v).contract_id for k, v in settlements.items()
    } == {
        "sig1.sub1": "c1",
        "sig1.sub3": "c3",
    }
    assert await book.contract_owners("acc-a", ["c1", "c2"]) == {"c1": "sig1.sub1"}
    assert await book.contract_owners("acc-b", ["c3"]) == {"c3": "sig1.sub3"}
    for account in ("acc-a", "acc-b"):
        assert 0 < await redis.ttl(book.claims_key(account)) <= MARKER_TTL_SECONDS
    await redis.aclose()


async def test_groups_larger_than_one_script_call_finish_completely(settings: Settings) -> None:
    redis = connect_redis(settings.redis_url)
    topology = Topology(settings.namespace)
    book = MarkerBook(redis, topology, topology.settlements_key("deriv", "w1"))
    orders = [order(n, f"acc-{n % 7}") for n in range(600)]  # three script calls
    claims = await book.claim([(o, marker(MarkerStatus.INFLIGHT)) for o in orders])
    placed = marker(MarkerStatus.PLACED)
    done = await book.finish_many(
        [
            (c.order.order_id, c.mine or b"", placed, pending(c.order, f"c{i}"))
            for i, c in enumerate(claims)
        ]
    )
    assert done == [True] * 600
    assert await redis.hlen(book.settle_key) == 600
    owners = await book.contract_owners("acc-3", [f"c{n}" for n in range(600)])
    assert owners == {f"c{n}": f"sig1.sub{n}" for n in range(600) if n % 7 == 3}
    await redis.aclose()


async def test_a_claims_hash_is_refreshed_once_it_has_less_than_23_hours_left(
    settings: Settings,
) -> None:
    """Every claim outlives the hour in which its order can still be taken over: the
    account's claims hash is set to a day whenever it has less than 23 hours left."""
    redis = connect_redis(settings.redis_url)
    topology = Topology(settings.namespace)
    book = MarkerBook(redis, topology, topology.settlements_key("deriv", "w1"))
    fresh, aging = order(1, "acc-fresh"), order(2, "acc-aging")
    await redis.hset(book.claims_key("acc-aging"), "c0", "sig0.sub0")
    await redis.expire(book.claims_key("acc-aging"), MARKER_TTL_SECONDS - 3600 - 60)
    await redis.hset(book.claims_key("acc-fresh"), "c0", "sig0.sub0")
    await redis.expire(book.claims_key("acc-fresh"), MARKER_TTL_SECONDS - 600)
    claims = await book.claim([(o, marker(MarkerStatus.INFLIGHT)) for o in (fresh, aging)])
    placed = marker(MarkerStatus.PLACED)
    done = await book.finish_many(
        [(c.order.order_id, c.mine or b"", placed, pending(c.order, "c1")) for c in claims]
    )
    assert done == [True, True]
    # Refreshed to a day; the fresh one is left as it was (an EXPIRE per account per call
    # is one more entry in the append-only file for nothing).
    assert await redis.ttl(book.claims_key("acc-aging")) > MARKER_TTL_SECONDS - 60
    assert await redis.ttl(book.claims_key("acc-fresh")) <= MARKER_TTL_SECONDS - 600
    for account in ("acc-fresh", "acc-aging"):
        assert await book.contract_owners(account, ["c0", "c1"]) == {
            "c0": "sig0.sub0",
            "c1": f"sig1.sub{1 if account == 'acc-fresh' else 2}",
        }
    await redis.aclose()
