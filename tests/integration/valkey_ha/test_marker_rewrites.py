"""A marker write sent again is written again (the WAIT after it must cover it: one
that finds its own bytes already there and writes nothing would be "confirmed" by
replicas that never received the first)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from apps.brokers.markers import Marker, MarkerBook, MarkerStatus, pack
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.topology import Topology
from tests.fixtures.factories import make_order


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Redis]:
    redis = connect_redis(settings.redis_url)
    yield redis
    await redis.aclose()


async def _offset(redis: Redis) -> int:
    """What the server has propagated so far (to replicas and its append-only file)."""
    return int((await redis.info("replication"))["master_repl_offset"])


def _marker(status: MarkerStatus) -> Marker:
    now = time.time()
    return Marker(status=status, worker="w1", claimed_at=now, updated_at=now, lease_until=now + 5)


async def test_a_resent_claim_finish_and_contract_claim_write_again(
    client: Redis, settings: Settings
) -> None:
    topology = Topology(settings.namespace)
    book = MarkerBook(client, topology, topology.settlements_key("deriv", "w1"))
    order = make_order(signal_id="s1", subscription_id="sub1", account="ba1")
    inflight, placed = _marker(MarkerStatus.INFLIGHT), _marker(MarkerStatus.PLACED)

    [first] = await book.claim([(order, inflight)])
    before = await _offset(client)
    [again] = await book.claim([(order, inflight)])
    assert first.mine == again.mine == pack(inflight)  # still ours, and
    assert await _offset(client) > before  # written again

    await book.finish_many([(order.order_id, pack(inflight), placed, None)])
    before = await _offset(client)
    assert await book.finish_many([(order.order_id, pack(inflight), placed, None)]) == [True]
    assert await _offset(client) > before

    assert await book.claim_contract("ba1", "c1", order.order_id)
    before = await _offset(client)
    assert await book.claim_contract("ba1", "c1", order.order_id)
    assert await _offset(client) > before
    # What writes nothing propagates nothing: the measure tells the two apart.
    before = await _offset(client)
    assert not await book.claim_contract("ba1", "c1", "another order")
    assert await _offset(client) == before
