"""The topology declared on a 3-node cluster by its admin user: every stream at 3
replicas with a leader, consumers on the same peers, a second declaration a no-op, and a
stream left at 1 replica caught — by a service's start (which may not change it) and
brought back by the next declaration."""

from __future__ import annotations

from typing import Any

import pytest
from nats.aio.client import Client as NATS

from apps.core.nats import (
    NatsPermissionError,
    connect,
    declare_topology,
    ensure_topology,
    load_definitions,
    server_config,
)
from apps.core.settings import Settings
from apps.core.topology import Topology
from tests.fixtures.waiting import wait_for
from tests.integration.nats_cluster.conftest import AuthNats

pytestmark = pytest.mark.timeout(120)


async def _info(nc: NATS, subject: str) -> dict[str, Any]:
    import json

    reply = json.loads((await nc.request(f"$JS.API.{subject}", b"", timeout=5)).data)
    assert "error" not in reply, reply
    return reply  # type: ignore[no-any-return]


def _replicated(info: dict[str, Any], replicas: int) -> bool:
    """A leader and ``replicas - 1`` followers that are current."""
    cluster = info.get("cluster") or {}
    followers = [p for p in cluster.get("replicas") or () if p.get("current")]
    return bool(cluster.get("leader")) and len(followers) == replicas - 1


async def test_the_admin_declares_the_topology_at_three_replicas(
    nats_cluster: AuthNats, settings: Settings
) -> None:
    admin = nats_cluster.settings_for(settings, "admin", replicas=3)
    streams, consumers = load_definitions(Topology(), replicas=3)
    names = [s.name for s in streams]
    labels = [f"{c.stream}/{c.durable}" for c in consumers]

    first = await declare_topology(admin)
    assert sorted(first["created"]) == sorted(names + labels)

    nc = await connect(
        nats_cluster.url, "pytest-ops", user="ops", password=nats_cluster.passwords["ops"]
    )
    try:
        for name in names:
            await wait_for(
                lambda name=name: _info(nc, f"STREAM.INFO.{name}"),
                what=f"{name} to answer",
            )

            async def replicated(name: str = name) -> bool:
                return _replicated(await _info(nc, f"STREAM.INFO.{name}"), 3)

            await wait_for(replicated, what=f"{name} at 3 current replicas with a leader")
            assert (await server_config(nc, name))["num_replicas"] == 3
        for consumer in consumers:
            # The file's 0 means "as many as the stream": the server keeps saying 0 and
            # runs the consumer on the stream's 3 peers.
            subject = f"CONSUMER.INFO.{consumer.stream}.{consumer.durable}"

            async def on_three_peers(subject: str = subject) -> bool:
                return _replicated(await _info(nc, subject), 3)

            await wait_for(on_three_peers, what=f"{subject} on 3 peers")
            assert not (await _info(nc, subject))["config"].get("num_replicas")
    finally:
        await nc.close()

    second = await declare_topology(admin)
    assert second["created"] == [] and second["updated"] == []
    assert sorted(second["unchanged"]) == sorted(names + labels)


async def test_a_stream_left_at_one_replica_is_caught_and_declared_back(
    nats_cluster: AuthNats, settings: Settings
) -> None:
    await declare_topology(nats_cluster.settings_for(settings, "admin", replicas=1))
    router = nats_cluster.settings_for(settings, "router", replicas=3)
    nc = await connect(
        router.nats_url, "pytest-router", user="router", password=router.nats_password
    )
    try:
        # The router may read the topology, not change it: its start says who may.
        with pytest.raises(NatsPermissionError) as refused:
            await ensure_topology(nc, Topology(), replicas=3)
        assert "NATS user 'router' may not update stream" in str(refused.value)
        assert "copier ops declare" in str(refused.value)
        # At the replicas it was declared with, the same user starts fine: reading only.
        done = await ensure_topology(nc, Topology(), replicas=1)
        assert done["created"] == [] and done["updated"] == []
    finally:
        await nc.close()

    fixed = await declare_topology(nats_cluster.settings_for(settings, "admin", replicas=3))
    assert sorted(fixed["updated"]) == ["EXECUTIONS", "ORDERS", "SIGNALS"]
    assert fixed["created"] == []
