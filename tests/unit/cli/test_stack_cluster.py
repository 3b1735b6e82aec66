"""What `copier up --cluster` starts, from its settings (no process is started here)."""

from __future__ import annotations

from pathlib import Path

from apps.core import nats_users
from apps.core.settings import Settings
from cli.stack import build_children, embedded_settings


def _cluster(tmp_path: Path, **env: str) -> Settings:
    return embedded_settings(Settings.from_env({"CLUSTER": "1", **env}, data_dir=tmp_path))


def test_the_cluster_runs_three_nats_nodes_valkey_with_sentinels_and_two_of_each_service(
    tmp_path: Path,
) -> None:
    names = [c.spec.name for c in build_children(_cluster(tmp_path))]

    assert names[:9] == [
        "nats-1",
        "nats-2",
        "nats-3",
        "valkey-1",
        "valkey-2",
        "valkey-3",
        "sentinel-1",
        "sentinel-2",
        "sentinel-3",
    ]
    for name in ("mongodb", "sim-deriv", "sim-iqoption", "api", "router-1", "router-2", "ledger"):
        assert name in names
    assert {"worker-deriv", "worker-deriv-2"} <= set(names)
    assert len(names) == len(set(names))


def test_ports_are_each_base_plus_the_node_number(tmp_path: Path) -> None:
    settings = _cluster(
        tmp_path,
        NATS_PORT="14222",
        NATS_MONITOR_PORT="18222",
        NATS_CLUSTER_PORT="16222",
        REDIS_PORT="16379",
        REDIS_SENTINEL_PORT="26379",
    )
    by_name = {c.spec.name: c.spec for c in build_children(settings)}

    for i in range(3):
        ports = set(by_name[f"nats-{i + 1}"].ports)
        assert {14222 + i, 18222 + i} <= ports
        assert set(by_name[f"sentinel-{i + 1}"].ports) == {26379 + i}
    assert [by_name[f"valkey-{i}"].ports for i in (1, 2, 3)] == [(16379,), (16380,), (16381,)]
    assert (
        settings.nats_url == "nats://127.0.0.1:14222,nats://127.0.0.1:14223,nats://127.0.0.1:14224"
    )
    assert settings.redis_sentinels == "127.0.0.1:26379,127.0.0.1:26380,127.0.0.1:26381"
    assert settings.nats_replicas == 3 and settings.redis_wait_replicas == 1


def test_every_service_connects_as_its_own_nats_user(tmp_path: Path) -> None:
    settings = _cluster(tmp_path)
    by_name = {c.spec.name: c.spec for c in build_children(settings)}
    passwords = nats_users.ensure_passwords(tmp_path)

    expected = {
        "api": "api",
        "router-1": "router",
        "router-2": "router",
        "worker-deriv": "worker-deriv",
        "worker-deriv-2": "worker-deriv",
        "worker-iqoption": "worker-iqoption",
        "ledger": "ledger",
    }
    for name, user in expected.items():
        env = by_name[name].env
        assert env["NATS_USER"] == user
        assert env["NATS_PASSWORD"] == passwords[user]
        assert env["REDIS_SENTINELS"] == settings.redis_sentinels
    # The servers know every user's password; nobody else gets the admin's.
    assert all(by_name[f"nats-{i}"].env for i in (1, 2, 3))
    assert not any(spec.env.get("NATS_PASSWORD") == passwords["admin"] for spec in by_name.values())


def test_the_single_node_default_has_no_nats_users(tmp_path: Path) -> None:
    children = build_children(embedded_settings(Settings.from_env({}, data_dir=tmp_path)))
    names = [c.spec.name for c in children]

    assert names[:3] == ["nats", "valkey", "mongodb"] and "router" in names
    assert all(not c.spec.env.get("NATS_USER") for c in children)
