"""The NATS users: nats/auth.conf and apps/core/nats_users.py name the same users and
variables, generated passwords are private and kept, and the cluster's nodes are wired
as `copier up --cluster` and compose run them."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from apps.core.embedded import nats_cluster_specs
from apps.core.nats import NATS_DIR, inbox_prefix, load_definitions, server_urls
from apps.core.nats_users import (
    ALL_USERS,
    PASSWORDS_FILE,
    SERVICE_USERS,
    SYSTEM_USER,
    ensure_passwords,
    new_password,
    password_variable,
    server_env,
)
from apps.core.topology import Topology

# Without its comments.
AUTH = "\n".join(line.split("#")[0] for line in (NATS_DIR / "auth.conf").read_text().splitlines())
USER_LINE = re.compile(r"\{user = ([\w-]+), password = \$(\w+)")


def test_password_variables() -> None:
    assert password_variable("worker-deriv") == "NATS_WORKER_DERIV_PASSWORD"
    assert password_variable("api") == "NATS_API_PASSWORD"
    assert password_variable("worker-iqoption") == "NATS_WORKER_IQOPTION_PASSWORD"
    assert SERVICE_USERS == (
        "api",
        "router",
        "worker-deriv",
        "worker-iqoption",
        "ledger",
        "notifier",
        "ops",
        "admin",
    )


def test_auth_conf_names_every_user_with_its_variable() -> None:
    declared = dict(USER_LINE.findall(AUTH))
    assert declared == {user: password_variable(user) for user in ALL_USERS}
    assert "no_auth_user" not in AUTH
    # Nobody holds the whole JetStream API or publishes everything.
    assert '"$JS.>"' not in AUTH
    publish_blocks = re.findall(r"publish = \{\s*allow = \[([^\]]*)\]", AUTH)
    assert len(publish_blocks) == len(SERVICE_USERS)
    assert all('">"' not in block for block in publish_blocks)
    assert "system_account = SYS" in AUTH


def test_each_service_subscribes_to_its_own_inbox() -> None:
    for user in ("api", "router", "worker-deriv", "worker-iqoption", "ledger"):
        assert f'"{inbox_prefix(user)}.>"' in AUTH


def test_passwords_are_generated_once_private_and_parse_as_strings(tmp_path: Path) -> None:
    first = ensure_passwords(tmp_path)
    assert set(first) == set(ALL_USERS)
    path = tmp_path / PASSWORDS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_passwords(tmp_path) == first
    for password in first.values():
        # nats-server reads a value that starts with a digit as a number.
        assert password[0].isalpha() and password.isalnum() and len(password) >= 32
    assert len(set(first.values())) == len(first)
    assert server_env(first)["NATS_WORKER_DERIV_PASSWORD"] == first["worker-deriv"]


def test_a_user_missing_from_an_older_file_is_added(tmp_path: Path) -> None:
    (tmp_path / PASSWORDS_FILE).write_text('{"api": "kept"}')
    passwords = ensure_passwords(tmp_path)
    assert passwords["api"] == "kept" and passwords[SYSTEM_USER]
    assert stat.S_IMODE((tmp_path / PASSWORDS_FILE).stat().st_mode) == 0o600
    assert ensure_passwords(tmp_path) == passwords


def test_new_passwords_differ() -> None:
    assert new_password() != new_password()


def test_cluster_nodes_route_to_each_other_on_loopback(tmp_path: Path) -> None:
    env = {"NATS_API_PASSWORD": "x"}
    specs = nats_cluster_specs(
        tmp_path, [4222, 4223, 4224], [8222, 8223, 8224], [6222, 6223, 6224], env
    )
    assert [s.name for s in specs] == ["nats-1", "nats-2", "nats-3"]
    assert [s.address for s in specs] == [f"nats://127.0.0.1:{p}" for p in (4222, 4223, 4224)]
    for n, spec in enumerate(specs):
        argv = list(spec.argv)

        def arg(flag: str, argv: list[str] = argv) -> str:
            return argv[argv.index(flag) + 1]

        assert arg("--config") == str(NATS_DIR / "cluster.conf")
        assert arg("--server_name") == f"nats-{n + 1}"
        assert arg("--addr") == "127.0.0.1"
        assert arg("--cluster") == f"nats://127.0.0.1:{6222 + n}"
        assert arg("--routes") == ",".join(f"nats://127.0.0.1:{p}" for p in (6222, 6223, 6224))
        assert arg("--store_dir") == str(tmp_path / f"nats-{n + 1}")
        assert spec.env == env
        assert set(spec.ports) == {4222 + n, 8222 + n, 6222 + n}
    # The monitor port binds where the client port does (--addr covers both).
    assert "--http" not in specs[0].argv
    cluster_conf = (NATS_DIR / "cluster.conf").read_text()
    assert "include ./server.conf" in cluster_conf and "include ./auth.conf" in cluster_conf
    assert re.search(r"name: copier\b", cluster_conf)


def test_several_servers_in_one_url() -> None:
    assert server_urls("nats://a:1, nats://b:2,") == ["nats://a:1", "nats://b:2"]
    assert server_urls("nats://a:1") == ["nats://a:1"]


def test_streams_take_the_replicas_asked_and_consumers_follow_them() -> None:
    streams, consumers = load_definitions(Topology(), replicas=3)
    assert {s.config["num_replicas"] for s in streams} == {3}
    assert {c.config["num_replicas"] for c in consumers} == {0}
    for path in (NATS_DIR / "streams").glob("*.json"):
        assert "num_replicas" not in path.read_text()
    with pytest.raises(ValueError, match="NATS_REPLICAS"):
        load_definitions(Topology(), replicas=0)
