"""A NATS node that cannot reach the other nodes of its cluster elects no JetStream meta
leader: `copier up --cluster` never calls it healthy, and declaring the topology through
it ends in one line saying what to check — never a lone node serving as if it were the
cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from apps.core import embedded, nats
from apps.core.nats import JetStreamUnavailableError, declare_topology
from apps.core.settings import Settings
from tests.integration.nats_cluster.conftest import AuthNats, cluster_of_three

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def lone_node(tmp_path: Path) -> AsyncIterator[AuthNats]:
    """nats-1 of three, the other two never started: its routes lead nowhere (healthy as
    a server of clients, never as a cluster node)."""
    node = cluster_of_three(tmp_path / "lone", started=1)
    try:
        await node.start()
        yield node
    finally:
        await node.stop()


async def test_a_node_that_cannot_join_is_never_the_cluster(
    lone_node: AuthNats, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not await embedded.nats_cluster_healthy(lone_node.monitor_ports[0])

    monkeypatch.setattr(nats, "API_UNAVAILABLE_PATIENCE", 3.0)
    admin = lone_node.settings_for(settings, "admin", replicas=3)
    with pytest.raises(JetStreamUnavailableError) as refused:
        await declare_topology(admin)
    said = str(refused.value)
    assert "\n" not in said
    assert "is the NATS cluster formed?" in said and "--routes" in said
