"""What prevents a second placement when a marker written just before a failover is
lost: with REDIS_WAIT_REPLICAS=1 a claim counts only once the replica holds
it, so the broker is not called while it does not, and a claim the failover loses is
written again on the promoted primary before the order goes to the broker — once.

Without WAIT (the single-node default), the same sequence sends the order to the broker
while only the primary holds its claim: a failover then would lose the marker of an
order already bought, leaving the redelivery nothing to stop a second buy but the
broker's own books."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NATS

from apps.brokers.runner import Runner
from apps.core.messages import ExecutionState
from apps.core.redis import confirmed, connect_redis
from apps.core.settings import Settings
from tests.fixtures.copier_harness import Copier
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.holding_proxy import HoldingProxy
from tests.fixtures.waiting import PATIENCE, wait_for
from tests.integration.valkey_ha.valkey_set import MASTER, ValkeySet


@pytest.fixture
async def copier_ha(
    settings: Settings, nc: NATS, sim: SimHandle, valkey_set: ValkeySet
) -> AsyncIterator[Copier]:
    """The worker harness on the Sentinel-managed set instead of the single Valkey."""
    client = connect_redis("", sentinels=valkey_set.sentinels, master_name=MASTER)
    harness = Copier(settings, nc, client, sim)
    await harness.start_reading()
    yield harness
    await client.aclose()


async def _replicated(copier: Copier) -> None:
    """Everything written so far (the subscribers' credentials) is on the replica too: a
    confirmed write after it covers it, replication being one ordered stream."""
    await confirmed(copier.redis, 1, "SET", "replicated", "yes")


async def _working(runner: Runner) -> None:
    """The worker holds its process lease (confirmed, with WAIT): it is consuming."""
    await wait_for(lambda: runner.owners.holds(0), what="the worker's process lease")


@pytest.fixture
async def replication(valkey_set: ValkeySet) -> AsyncIterator[HoldingProxy]:
    """The replica's replication link, through a proxy that can hold the primary's
    stream back: what it holds never reaches the replica (a paused replica would still
    find it in its socket buffer when it resumes)."""
    proxy = HoldingProxy("127.0.0.1", valkey_set.primary_port)
    proxy.start()
    replica = valkey_set.node(valkey_set.replica_port)
    try:
        await replica.replicaof("127.0.0.1", proxy.port)
        await wait_for(
            lambda: valkey_set.replica_of(valkey_set.replica_port, proxy.port),
            what="the replica to follow the primary through the proxy",
        )
        yield proxy
    finally:
        await replica.aclose()
        proxy.release()
        proxy.stop()


async def _on_replica(valkey_set: ValkeySet, key: str) -> bool:
    replica = valkey_set.node(valkey_set.replica_port)
    try:
        return bool(await replica.exists(key))
    finally:
        await replica.aclose()


def _held_unconfirmed(caplog: pytest.LogCaptureFixture) -> bool:
    return any(
        "claiming orders" in r.getMessage() and "Unreplicated" in r.getMessage()
        for r in caplog.records
    )


async def test_a_claim_lost_in_a_failover_is_placed_exactly_once(
    copier_ha: Copier,
    valkey_set: ValkeySet,
    replication: HoldingProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "brokers.runner")
    copier = copier_ha
    [account] = await copier.subscribers(1)
    await _replicated(copier)
    # Valid long enough for the failover and the old primary's return below.
    order = copier.order(account, "sig-failover", valid_for=PATIENCE)
    marker_key = copier.topology.order_marker_key(order.order_id)
    primary = valkey_set.node(valkey_set.primary_port)
    async with copier.worker("w-ha", wait_replicas=1) as runner:
        await _working(runner)
        # Nothing written from here on reaches the replica.
        replication.hold()
        await copier.publish([order])
        await wait_for(lambda: primary.exists(marker_key), what="the claim on the primary")
        await primary.aclose()
        await wait_for(
            lambda: _held_unconfirmed(caplog), what="the worker to hold the unconfirmed claim"
        )
        # On the primary, not on the replica: the broker was not called.
        assert not await _on_replica(valkey_set, marker_key)
        assert await copier.contracts_per_order() == {}

        # The primary dies with the claim; the replica, which never got it, is promoted.
        await valkey_set.kill("valkey-1")
        replication.cut()
        await wait_for(
            lambda: valkey_set.primary_is(valkey_set.replica_port),
            timeout=PATIENCE,
            what="the Sentinels to promote valkey-2",
        )
        # The claim, written again on the new primary, waits for a replica to confirm it:
        # still no buy. The old primary comes back as that replica.
        assert await copier.contracts_per_order() == {}
        await valkey_set.start("valkey-1")
        await copier.wait_final([order], timeout=PATIENCE)

    assert copier.final(order).state is ExecutionState.PLACED
    assert await copier.contracts_per_order() == {order.order_id: 1}
    placed = [e for e in copier.by_order()[order.order_id] if e.state is ExecutionState.PLACED]
    assert len(placed) == 1


async def test_without_wait_the_broker_is_called_before_the_replica_holds_the_claim(
    copier_ha: Copier, valkey_set: ValkeySet, replication: HoldingProxy
) -> None:
    copier = copier_ha
    [account] = await copier.subscribers(1)
    await _replicated(copier)
    order = copier.order(account, "sig-no-wait", valid_for=PATIENCE)
    async with copier.worker("w-no-wait", wait_replicas=0) as runner:
        await _working(runner)
        replication.hold()
        await copier.publish([order])
        # Bought while the only copy of its claim is on the primary: the failover of the
        # test above would lose the marker of an order already placed.
        await wait_for(lambda: _bought(copier, order.order_id), what="the buy")
        key = copier.topology.order_marker_key(order.order_id)
        assert not await _on_replica(valkey_set, key)
        replication.release()
        await copier.wait_final([order])


async def _bought(copier: Copier, order_id: str) -> bool:
    return (await copier.contracts_per_order())[order_id] == 1
