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
from apps.core.nats_users import ensure_passwords, server_env
from apps.core.settings import Settings
from tests.integration.nats_cluster.conftest import AuthNats

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def lone_node(tmp_path: Path) -> AsyncIterator[AuthNats]:
    """nats-1 of three, the other two never started: its routes lead nowhere."""
    root = tmp_path / "lone"
    root.mkdir()
    passwords = ensure_passwords(root)
    ports, monitors, routes = ([embedded.free_port() for _ in range(3)] for _ in range(3))
    first = embedded.nats_cluster_specs(root, ports, monitors, routes, server_env(passwords))[0]
    node = AuthNats(root, [first], monitors[:1], passwords)  # healthy: serving clients
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
