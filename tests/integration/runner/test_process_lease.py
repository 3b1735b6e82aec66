"""The process lease against a real Valkey: who counts as a live owner of an order."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from apps.brokers.markers import Marker, MarkerStatus
from apps.brokers.ownership import ProcessLease
from apps.core.settings import Settings
from apps.core.topology import Topology
from tests.fixtures.waiting import wait_for


def _claimed_by(lease: ProcessLease) -> Marker:
    return Marker(
        status=MarkerStatus.INFLIGHT,
        worker=lease.worker_id,
        claimed_at=0.0,
        updated_at=0.0,
        lease_until=1e12,  # its own lease far from lapsing: only the process lease decides
        incarnation=lease.incarnation,
    )


async def test_a_restart_under_the_same_id_ends_the_previous_life_at_once(
    redis: Redis, settings: Settings
) -> None:
    topology = Topology(settings.namespace)
    first = ProcessLease(redis, topology, "worker-a", ttl=30)
    await first.take()
    orders_of_first = _claimed_by(first)
    peer = ProcessLease(redis, topology, "worker-b", ttl=30)
    assert await peer.owner_alive(orders_of_first) is True

    restarted = ProcessLease(redis, topology, "worker-a", ttl=30)
    await restarted.take()
    # No TTL to wait out: the restarted process's own first look already says so.
    assert await restarted.owner_alive(orders_of_first) is False
    assert await restarted.owner_alive(_claimed_by(restarted)) is True


async def test_a_dead_workers_lease_lapses_and_a_live_ones_is_renewed(
    redis: Redis, settings: Settings
) -> None:
    topology = Topology(settings.namespace)
    live = ProcessLease(redis, topology, "worker-live", ttl=1.5)
    dead = ProcessLease(redis, topology, "worker-dead", ttl=1.5)
    await live.take()
    await dead.take()  # and never renewed: its process is gone
    lapses: list[str] = []
    renewing = asyncio.create_task(live.run(lambda: lapses.append("lapse")))
    peer = ProcessLease(redis, topology, "worker-peer", ttl=1.5)
    try:

        async def dead_is_gone() -> bool:
            return await peer.owner_alive(_claimed_by(dead)) is False

        await wait_for(dead_is_gone, timeout=60, what="the dead worker's lease to lapse")
        assert await peer.owner_alive(_claimed_by(live)) is True
        assert live.holds(margin=0.0)
        assert not lapses
    finally:
        renewing.cancel()


async def test_a_marker_without_an_incarnation_is_left_to_its_own_lease(
    redis: Redis, settings: Settings
) -> None:
    lease = ProcessLease(redis, Topology(settings.namespace), "worker-x", ttl=30)
    older = Marker(status=MarkerStatus.INFLIGHT, worker="worker-y", claimed_at=0.0, updated_at=0.0)
    assert await lease.owner_alive(older) is None
