"""`copier signal send --wait`, `ops streams` and `ops trace` with the signal path running:
router, ledger and Deriv worker as processes, subscribers on the simulator."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.topology import Topology
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.live_api import Api
from tests.fixtures.pipeline import Pipeline, seed_subscribers
from tests.fixtures.waiting import wait_for
from tests.integration.cli.conftest import Cli

SEND = ("--asset", "R_100", "--call", "--expiry", "15", "--stake", "1", "--timeout", "60")


@pytest.fixture
def api_settings(pipeline_settings: Settings) -> Settings:
    # Slack for a loaded CI machine: an order placed late would be "expired", not "placed".
    return replace(pipeline_settings, signal_validity_seconds=30.0)


async def services_ready(cli: Cli) -> bool:
    """Router and worker have a pull request waiting: they are serving. (The ledger's pulls
    are short and it catches up from its durable consumer anyway.)"""
    streams = await cli.json("ops", "streams")
    waiting = {c["name"]: c["num_waiting"] for s in streams for c in s["consumers"]}
    return all(waiting.get(name) for name in ("router", "broker-deriv"))


async def test_wait_follows_the_fanout_and_ops_shows_its_path(
    cli: Cli, http: Api, pipeline: Pipeline, sim: SimHandle
) -> None:
    provider = await http.user("provider", "provider")
    channel = await http.channel(provider)
    broken = await http.channel(provider, "Broken")
    await seed_subscribers(pipeline.settings, sim, channel, count=20, accounts=4)
    # A subscriber whose sealed credentials are gone: the worker can only fail the order.
    [lost] = await seed_subscribers(pipeline.settings, sim, broken, count=1, accounts=1)
    redis = connect_redis(pipeline.settings.redis_url)
    topology = Topology(pipeline.settings.namespace)
    await redis.delete(topology.broker_account_key(lost.broker_account_id))
    await redis.aclose()
    await pipeline.start("router")
    await pipeline.start("ledger")
    await pipeline.start("worker")
    await cli.login(provider)
    await wait_for(lambda: services_ready(cli), timeout=60, what="the services to consume")

    result = await cli.json("signal", "send", "-c", channel, *SEND, "--wait")
    progress = result["progress"]
    assert progress["done"] and progress["counts"] == {
        "total": 20,
        "placed": 20,
        "rejected": 0,
        "expired": 0,
        "failed": 0,
        "unknown": 0,
    }, pipeline.log("worker")[-2000:]
    assert progress["latency_ms"]["last_placed"] is not None
    signal_id = result["signal_id"]

    human = await cli.ok("signal", "send", "-c", channel, *SEND, "--wait")
    assert "placed" in human.stdout and "20 / 20" in human.stdout

    failed = await cli.run("signal", "send", "-c", broken, *SEND, "--wait")
    assert failed.exit_code == 1
    assert failed.stderr.startswith("error: 1 failed and 0 unknown of 1 orders")

    streams = {s["stream"]: s for s in await cli.json("ops", "streams")}
    signals = streams[topology.stream("SIGNALS")]
    assert signals["messages"] == 3 and signals["subjects"] == [topology.subject("signals", ">")]
    consumers = {c["name"]: c for s in streams.values() for c in s["consumers"]}
    assert {"router", "ledger", "broker-deriv"} <= set(consumers)
    assert consumers["router"]["num_pending"] == 0
    assert consumers["router"]["last_active"]
    table = (await cli.ok("ops", "streams")).stdout
    assert topology.stream("EXECUTIONS") in table and "ack pending" in table

    trace = await cli.json("ops", "trace", signal_id)
    steps = {row["step"]: row for row in trace["timeline"]}
    for step in (
        "accepted by the API",
        "stored in SIGNALS",
        "routed",
        "first placement",
        "last placement",
        "every order final",
    ):
        assert steps[step]["at"] is not None, (step, trace["timeline"])
    assert steps["routed"]["detail"].startswith("20 orders")
    times = [steps[s]["at"] for s in ("accepted by the API", "routed", "last placement")]
    assert times == sorted(times)
    assert trace["executions"]["orders"]["placed"] == 20
    human = (await cli.ok("ops", "trace", signal_id)).stdout
    assert "stored in SIGNALS" in human and "ledger: total 20, placed 20" in human

    # Errors: an unknown signal, NATS down, a user who may not see the signal.
    assert "signal not found" in await cli.fails("ops", "trace", "no-such-signal")
    assert "cannot reach NATS" in await cli.fails("ops", "streams", "--nats", "nats://127.0.0.1:1")
    await cli.login(await http.user("provider", "stranger"))
    assert "signal not found" in await cli.fails("ops", "trace", signal_id)
    assert "owner and its delegates" in await cli.fails(
        "signal", "send", "-c", channel, *SEND, "--wait"
    )
    json.dumps(trace)  # the whole trace is plain JSON
