"""Each service does its real work as its own NATS user of nats/auth.conf: router, ledger,
Deriv worker and notifier run as processes against a node with users, the admin declared
the topology, the API's user sends one signal to 20 subscribers — every order is placed,
recorded and notified in-app, and neither a process nor the server logged a permissions
violation (the metrics' JetStream reads included). The IQ Option worker likewise places
what the router publishes on ``orders.iqoption.*``."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from apps.core import embedded
from apps.core.db import connect_db
from apps.core.messages import ExecutionState, encode
from apps.core.nats import connect, declare_topology
from apps.core.notifications import INBOX
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.signal_stats import signal_counts_from
from apps.core.topology import Topology
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.factories import make_signal
from tests.fixtures.iq_orders import IQCopier, iq_signals
from tests.fixtures.iqoption_sim import IQOptionSim
from tests.fixtures.pipeline import Pipeline, seed_subscribers
from tests.fixtures.waiting import wait_for
from tests.integration.nats_cluster.conftest import AuthNats

pytestmark = pytest.mark.timeout(180)

SUBSCRIBERS = 20
# The service (Pipeline name) → its NATS user in nats/auth.conf.
USERS = {
    "router": "router",
    "ledger": "ledger",
    "worker": "worker-deriv",
    "notifier": "notifier",
}


@pytest.fixture
async def valkey(tmp_path: Path) -> AsyncIterator[str]:
    """A Valkey of this test's own: the default namespace's keys must not meet others'."""
    spec = embedded.valkey_spec(tmp_path, embedded.free_port())
    with (tmp_path / "valkey.log").open("ab") as log:
        process = await embedded.spawn(spec, stdout=log.fileno())
    try:
        await embedded.wait_healthy(lambda: embedded.redis_healthy(spec.address), 60, "valkey")
        yield spec.address
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


async def _counts(settings: Settings, signal_id: str) -> dict[str, Any]:
    redis = connect_redis(settings.redis_url)
    try:
        raw = await redis.hgetall(Topology().signal_stats_key(signal_id))
    finally:
        await redis.aclose()
    return signal_counts_from(raw)


async def _notified(settings: Settings) -> int:
    mongo, _ = connect_db(settings.mongodb_uri, settings.mongodb_database)
    try:
        found = mongo[settings.mongodb_database][INBOX]
        return int(await found.count_documents({"kind": "placed"}))
    finally:
        mongo.close()


async def test_each_service_works_under_its_own_user(
    auth_node: AuthNats, valkey: str, settings: Settings, sim: SimHandle, tmp_path: Path
) -> None:
    base = replace(
        auth_node.settings_for(settings, "ops"),
        redis_url=valkey,
        deriv_url=sim.url,
        order_group_size=5,
    )
    await declare_topology(auth_node.settings_for(base, "admin"))
    channel = "chan-users"
    await seed_subscribers(base, sim, channel, count=SUBSCRIBERS, accounts=SUBSCRIBERS)

    pipeline = Pipeline(base, tmp_path)
    ops = await connect(base.nats_url, "pytest-ops", user="ops", password=base.nats_password)
    try:
        for name, user in USERS.items():
            await pipeline.start(
                name,
                NATS_USER=user,
                NATS_PASSWORD=auth_node.passwords[user],
                METRICS_PORT=str(embedded.free_port()),
            )
        await pipeline.ready(ops)

        api = await connect(
            base.nats_url, "pytest-api", user="api", password=auth_node.passwords["api"]
        )
        try:
            sent = make_signal(channel, stake="1", asset="R_100")
            await api.jetstream().publish(
                Topology().signal_subject(channel),
                encode(sent),
                headers={"Nats-Msg-Id": sent.signal_id},
            )
        finally:
            await api.close()

        async def all_final() -> dict[str, Any] | None:
            counts = await _counts(base, sent.signal_id)
            return counts if counts["done"] else None

        counts = (await wait_for(all_final, what="every order of the signal final"))["counts"]
        assert counts["total"] == counts["placed"] == SUBSCRIBERS, counts

        async def notified() -> bool:
            return await _notified(base) == SUBSCRIBERS

        await wait_for(notified, what="every subscriber told in-app of the placed trade")
    finally:
        await ops.close()
        await pipeline.stop_all()

    for name in USERS:
        assert "violation" not in pipeline.log(name).lower(), pipeline.log(name)
    assert "violation" not in auth_node.log().lower(), auth_node.log()


async def test_the_iqoption_worker_works_under_its_own_user(
    auth_node: AuthNats, valkey: str, settings: Settings, iqoption_sim: IQOptionSim, tmp_path: Path
) -> None:
    base = replace(auth_node.settings_for(settings, "ops"), redis_url=valkey)
    await declare_topology(auth_node.settings_for(base, "admin"))
    ops = await connect(base.nats_url, "pytest-ops", user="ops", password=base.nats_password)
    router = await connect(
        base.nats_url, "pytest-router", user="router", password=auth_node.passwords["router"]
    )
    redis = connect_redis(valkey)
    copier = IQCopier(base, ops, redis, iqoption_sim)
    worker = None
    try:
        accounts = await copier.subscribers(5)
        [orders] = iq_signals(accounts, 1, "chan-iq-users")
        worker = await copier.spawn_worker(
            "iq-user",
            tmp_path,
            NATS_USER="worker-iqoption",
            NATS_PASSWORD=auth_node.passwords["worker-iqoption"],
            METRICS_PORT=str(embedded.free_port()),
        )
        await copier.publish(orders, as_router=router)

        async def all_placed() -> bool:
            finals = await copier.final_states([orders[0].signal_id])
            return len(finals) == len(orders)

        await wait_for(all_placed, what="every IQ Option order final")
        finals = await copier.final_states([orders[0].signal_id])
        assert all(states == {ExecutionState.PLACED} for states in finals.values()), finals
        assert {row["request_id"] for row in await iqoption_sim.ledger()} == {
            o.order_id for o in orders
        }
    finally:
        if worker is not None:
            with contextlib.suppress(ProcessLookupError):
                worker.send_signal(signal.SIGTERM)
            await worker.wait()
        await redis.aclose()
        await router.close()
        await ops.close()

    log = (tmp_path / "iq-user.log").read_text(errors="replace")
    assert "violation" not in log.lower(), log
    assert "violation" not in auth_node.log().lower(), auth_node.log()
