"""nats/auth.conf enforced by a real nats-server: the API's user cannot place orders, a
worker's cannot send signals, an anonymous client or a wrong password is refused in one
line, a service started with wrong credentials exits 1 saying so, and `copier ops declare`
is the admin's."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from apps.core.embedded import PROJECT_ROOT
from apps.core.nats import (
    NatsPermissionError,
    NatsStartError,
    connect,
    declare_topology,
    ensure_topology,
    inbox_prefix,
)
from apps.core.settings import Settings
from apps.core.topology import Topology
from cli.ops import read_subject
from tests.fixtures.waiting import wait_for
from tests.integration.nats_cluster.conftest import AuthNats

pytestmark = pytest.mark.timeout(120)
COPIER = str(Path(sys.executable).parent / "copier")


class Client:
    """A raw nats-py connection as one user, keeping what the server refused."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.nc = NATS()

    async def connect(self, servers: AuthNats, user: str) -> Client:
        async def collect(exc: Exception) -> None:
            self.errors.append(str(exc))

        await self.nc.connect(
            servers.url,
            user=user,
            password=servers.passwords[user],
            inbox_prefix=inbox_prefix(user),
            error_cb=collect,
            allow_reconnect=False,
        )
        return self

    def refused(self, subject: str) -> bool:
        wanted = f'permissions violation for publish to "{subject}"'.lower()
        return any(wanted in e.lower() for e in self.errors)


async def _messages(servers: AuthNats, stream: str) -> int:
    ops = await Client().connect(servers, "ops")
    try:
        reply = await ops.nc.request(f"$JS.API.STREAM.INFO.{stream}", b"", timeout=5)
        info: dict[str, Any] = json.loads(reply.data)
        return int(info["state"]["messages"])
    finally:
        await ops.nc.close()


async def _refused_publish(servers: AuthNats, user: str, subject: str) -> None:
    client = await Client().connect(servers, user)
    try:
        await client.nc.publish(subject, b"{}", headers={"Nats-Msg-Id": f"{user}-{subject}"})
        await client.nc.flush()
        await wait_for(lambda: client.refused(subject), what=f"{user} refused {subject}")
    finally:
        await client.nc.close()


async def test_the_api_cannot_place_orders_and_a_worker_cannot_send_signals(
    auth_node: AuthNats, settings: Settings
) -> None:
    await declare_topology(auth_node.settings_for(settings, "admin"))
    # What the users may: the API sends a signal, the router an order.
    for user, subject in (("api", "signals.c1"), ("router", "orders.deriv.0")):
        client = await Client().connect(auth_node, user)
        try:
            ack = await client.nc.jetstream().publish(subject, b"{}")
            assert ack.seq == 1
        finally:
            await client.nc.close()
    assert await _messages(auth_node, "ORDERS") == 1
    assert await _messages(auth_node, "SIGNALS") == 1

    await _refused_publish(auth_node, "api", "orders.deriv.0")
    await _refused_publish(auth_node, "worker-deriv", "signals.c1")
    await _refused_publish(auth_node, "api", "$JS.API.STREAM.DELETE.ORDERS")
    await _refused_publish(auth_node, "ops", "orders.deriv.0")
    assert await _messages(auth_node, "ORDERS") == 1
    assert await _messages(auth_node, "SIGNALS") == 1
    # `ops` reads what a trace reads, creating nothing.
    ops = await connect(
        auth_node.url, "pytest-ops", user="ops", password=auth_node.passwords["ops"]
    )
    try:
        [(_, data, _)] = await read_subject(ops, "SIGNALS", "signals.c1", None)
        assert data == b"{}"
    finally:
        await ops.close()
    # The server logs each refusal: what test_nats_service_users looks for.
    assert '"COPIER/user:api" - Publish Violation - Subject "orders.deriv.0"' in auth_node.log()


async def test_anonymous_clients_and_wrong_passwords_are_refused_in_one_line(
    auth_node: AuthNats,
) -> None:
    with pytest.raises(NatsStartError) as anonymous:
        await connect(auth_node.url, "pytest-anonymous")
    assert str(anonymous.value) == (
        "NATS refused an anonymous connection: authorization violation — "
        "check NATS_USER/NATS_PASSWORD"
    )
    with pytest.raises(NatsStartError) as wrong:
        await connect(auth_node.url, "pytest-wrong", user="router", password="wrong")
    assert str(wrong.value) == (
        "NATS refused user 'router': authorization violation — check NATS_USER/NATS_PASSWORD"
    )
    # No server at all: said once the start gives up, not retried for ever.
    with pytest.raises(NatsStartError, match=r"cannot reach NATS at nats://127\.0\.0\.1:1 "):
        await connect("nats://127.0.0.1:1", "pytest-nowhere", start_timeout=1)


async def test_a_service_cannot_declare_and_says_who_may(auth_node: AuthNats) -> None:
    nc = await connect(
        auth_node.url, "pytest-router", user="router", password=auth_node.passwords["router"]
    )
    try:
        with pytest.raises(NatsPermissionError) as refused:
            await ensure_topology(nc, Topology())
    finally:
        await nc.close()
    assert str(refused.value).startswith("NATS user 'router' may not create stream EXECUTIONS")
    assert str(refused.value).endswith(
        "declare the topology with `copier ops declare` (NATS user admin)"
    )


async def _run(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env},
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode(errors="replace")


async def test_copier_ops_declare_and_a_service_with_a_wrong_password(
    auth_node: AuthNats, settings: Settings
) -> None:
    admin = auth_node.settings_for(settings, "admin").as_env()
    code, out = await _run([COPIER, "ops", "declare"], admin)
    assert code == 0, out
    assert "created   SIGNALS/router" in out
    # Every stream and consumer file of nats/ is declared, each once.
    parts = len(list((PROJECT_ROOT / "nats").glob("*/*.json")))
    assert f"{parts} created, 0 updated, 0 unchanged" in out
    code, out = await _run([COPIER, "ops", "declare", "--json"], admin)
    assert code == 0, out
    assert json.loads(out)["created"] == [] and len(json.loads(out)["unchanged"]) == parts

    wrong = {**admin, "NATS_PASSWORD": "wrong"}
    code, out = await _run([COPIER, "ops", "declare"], wrong)
    assert code != 0
    assert "NATS refused user 'admin': authorization violation" in out
    assert "Traceback" not in out

    router = {**auth_node.settings_for(settings, "router").as_env(), "NATS_PASSWORD": "wrong"}
    code, out = await _run([sys.executable, "-m", "apps.router.main"], router)
    assert code == 1, out
    assert "NATS refused user 'router': authorization violation" in out
    assert "Traceback" not in out

    api = {**auth_node.settings_for(settings, "api").as_env(), "NATS_PASSWORD": "wrong"}
    code, out = await _run([sys.executable, "-m", "apps.api.main"], api)
    assert code == 1, out
    assert "NATS refused user 'api': authorization violation" in out
    assert "Traceback" not in out
