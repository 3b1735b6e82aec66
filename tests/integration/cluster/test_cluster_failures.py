"""The production topology, `copier up --cluster`, losing one part in the middle of a
fan-out of 2,000 subscriptions: a crash costs a delay, never a trade.

One stack for the module — 3 NATS nodes with every stream at R3 and a NATS user per
service, Valkey primary + 2 replicas + 3 Sentinels, 2 routers, 2 Deriv workers, the API,
the ledger and the simulator — started and supervised by `copier up --cluster --detach`
exactly as ops run it; the supervisor restarts whatever a test kills. Each test sends one
signal through the API to a channel of its own with 2,000 subscriptions (one broker
account each), SIGKILLs one part at a set moment after the 202, and holds the outcome to
``tests/fixtures/fault_checks.py``: every order final once, one contract per placed
order in the simulator's ledger, nothing placed after ``valid_until``, nothing expired
that was still valid when the part was back. The time from the 202 to the last final
state is appended to ``test-artifacts/cluster-faults.json``.

The NATS users are held to least privilege here too: the API's user cannot publish
orders, a worker's cannot publish signals, and an anonymous client is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout

from apps.core import nats_users
from apps.core.embedded import PROJECT_ROOT
from apps.core.nats import connect, connect_from
from apps.core.redis import connect_redis_from, master_address
from apps.core.settings import Settings
from apps.core.topology import Topology
from benchmarks.fanout.seeding import SIGNAL, Provider, auth, new_channel, provider, seed
from cli.stack import embedded_settings, free_ports_env
from cli.supervisor import STATE_FILE
from tests.fixtures.fault_checks import Run, check_every_order_final, record, signal_counts
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

SUBSCRIBERS = 2000
LATENCY_MS = 50
# Long enough that a signal outlives the worst of two JetStream elections in a row (4 to
# 9 s each): what is measured is the delay a fault costs, not whether it fits in 5 s.
VALIDITY = 20.0
ARTIFACT = PROJECT_ROOT / "test-artifacts" / "cluster-faults.json"
STACK_ENV = {
    # Two 64-order batch buys at the broker at a time per worker: the placements take
    # rounds of 50 ms or more, so the moments the faults are set at fall inside the
    # fan-out however fast the machine.
    "WORKER_CONCURRENCY": "128",
    "SIGNAL_VALIDITY_SECONDS": str(VALIDITY),
    "LOG_LEVEL": "INFO",
}


@dataclass
class Cluster:
    settings: Settings  # as the read-only ops user
    env: dict[str, str]
    api: httpx.AsyncClient
    sim: httpx.AsyncClient

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def services(self) -> dict[str, dict[str, Any]]:
        state = json.loads((self.data_dir / STATE_FILE).read_text())
        return {s["name"]: s for s in state["services"]}

    def kill(self, name: str) -> int:
        pid = int(self.services()[name]["pid"])
        os.kill(pid, signal.SIGKILL)
        return pid

    async def all_healthy(self) -> None:
        """Until every process is up and healthy again and the Valkey primary has its
        replica (a marker is confirmed on it before any broker call)."""

        async def healthy() -> bool:
            if not all(s["healthy"] for s in self.services().values()):
                return False
            return await _primary_has_replica(self.settings)

        await wait_for(healthy, timeout=180, what="the whole cluster healthy")

    async def contracts(self) -> list[dict[str, Any]]:
        reply = await self.sim.get("/admin/ledger")
        reply.raise_for_status()
        contracts: list[dict[str, Any]] = reply.json()["contracts"]
        return contracts


async def _primary_has_replica(settings: Settings) -> bool:
    redis = connect_redis_from(settings)
    try:
        info = await redis.info("replication")
    except Exception:
        return False
    finally:
        await redis.aclose()
    return info.get("role") == "master" and int(info.get("connected_slaves", 0)) >= 1


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    data = tmp_path_factory.mktemp("cluster")
    # CLUSTER=1 is what `--cluster` sets: this process reads the same settings.
    env = {**os.environ, "DATA_DIR": str(data), "CLUSTER": "1", **free_ports_env(), **STACK_ENV}
    up = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "cli.main", "up", "--cluster", "--detach", "--timeout", "180"),
        env=env,
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    said, _ = await up.communicate()
    try:
        assert up.returncode == 0, said.decode(errors="replace")[-4000:]
        base = embedded_settings(Settings.from_env(env))
        ops = replace(
            base,
            nats_user="ops",
            nats_password=nats_users.ensure_passwords(data)["ops"],
        )
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{base.api_port}", timeout=60) as api,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{base.deriv_sim_port}") as sim,
        ):
            yield Cluster(ops, env, api, sim)
    finally:
        down = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "cli.main", "down", "--timeout", "60"),
            env=env,
            cwd=PROJECT_ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await down.wait()


@pytest.fixture
async def ops_nc(cluster: Cluster) -> AsyncIterator[NATS]:
    """A client of the cluster as the read-only ops user (it reconnects across a kill)."""
    s = cluster.settings
    client = await connect_from(s, "cluster-test")
    try:
        yield client
    finally:
        await client.close()


async def _channel(cluster: Cluster) -> tuple[str, Provider]:
    """A channel of its own with SUBSCRIBERS subscriptions, each on its own account."""
    await cluster.all_healthy()
    who = await provider(cluster.api)
    channel = await new_channel(cluster.api, who, f"cluster-{time.time_ns()}")
    await seed(cluster.settings, cluster.sim, channel, SUBSCRIBERS, SUBSCRIBERS)
    (await cluster.sim.put("/admin/faults", json={"latency_ms": LATENCY_MS})).raise_for_status()
    return channel, who


async def _send(cluster: Cluster, channel: str, who: Provider) -> Run:
    reply = await cluster.api.post(
        f"/api/v1/channels/{channel}/signals", json=SIGNAL, headers=auth(who)
    )
    assert reply.status_code == 202, reply.text
    accepted = reply.json()
    return Run(accepted["signal_id"], accepted["valid_until"], time.time())


async def _at(run: Run, at_ms: float) -> None:
    await asyncio.sleep(max(0.0, run.accepted_at + at_ms / 1000 - time.time()))


async def _not_over(cluster: Cluster, run: Run) -> None:
    counts = await signal_counts(cluster.settings, run.signal_id)
    assert not counts["done"], "the fan-out was over before the fault: nothing was tested"


# The consumer on the signal's path in each stream: it has a raft group (a leader) of its
# own, elected apart from its stream's.
ON_THE_PATH = {"SIGNALS": "router", "ORDERS": "broker-deriv"}


async def _leader(nc: NATS, stream: str) -> str | None:
    # A short timeout: a request to a stream without a leader goes unanswered, and the
    # moment a leader answers is what the test notes.
    info = await nc.jetstream(timeout=0.5).stream_info(Topology("").stream(stream))
    return info.cluster.leader if info.cluster else None


async def _leaders(nc: NATS, stream: str) -> set[str | None]:
    """The leaders of ``stream`` and of its consumer on the signal's path."""
    js = nc.jetstream(timeout=0.5)
    consumer = await js.consumer_info(stream, ON_THE_PATH[stream])
    return {await _leader(nc, stream), consumer.cluster.leader if consumer.cluster else None}


async def _scenario(
    cluster: Cluster,
    fault: str,
    at_ms: float,
    kill: Callable[[], Awaitable[None]],
    back: Callable[[], Awaitable[float]],
) -> None:
    """Send, kill at ``at_ms`` after the 202, note when the part was ``back``, check."""
    channel, who = await _channel(cluster)
    run = await _send(cluster, channel, who)
    await _at(run, at_ms)
    await _not_over(cluster, run)
    await kill()
    run.replacement_up = await back()
    tally, finished = await check_every_order_final(
        cluster.settings, run, SUBSCRIBERS, cluster.contracts
    )
    record(
        ARTIFACT,
        fault,
        run,
        finished,
        topology="cluster",
        subscribers=SUBSCRIBERS,
        latency_ms=LATENCY_MS,
        validity_s=VALIDITY,
        states=tally,
    )


async def test_without_a_fault_every_order_is_placed(cluster: Cluster) -> None:
    """The reference the failures below are measured against."""
    await cluster.all_healthy()

    async def nothing() -> None:
        pass

    async def at_once() -> float:
        return time.time()

    await _scenario(cluster, "none", 0, nothing, at_once)


@pytest.mark.parametrize(("stream", "at_ms"), [("ORDERS", 50), ("SIGNALS", 0)])
async def test_killed_stream_leader_costs_a_delay_never_a_trade(
    cluster: Cluster, ops_nc: NATS, stream: str, at_ms: int
) -> None:
    """The node leading ORDERS in the middle of the fan-out; the node leading SIGNALS
    right after the 202, while the signal may not yet be read by a router. The part is
    back once the stream and its consumer on the signal's path both have a live leader
    (JetStream elects each in seconds)."""
    await cluster.all_healthy()
    victim = await _leader(ops_nc, stream)
    assert victim, f"{stream} has no leader"

    killed_pid = 0

    async def kill() -> None:
        nonlocal killed_pid
        killed_pid = cluster.kill(victim)

    async def back() -> float:
        async def new_leaders() -> bool:
            """Leaders that are alive, for the stream and its consumer on the signal's
            path: other nodes, or the victim once restarted."""
            with contextlib.suppress(Exception):
                leaders = await _leaders(ops_nc, stream)
                if None in leaders:
                    return False
                restarted = cluster.services()[victim]["pid"] != killed_pid
                return victim not in leaders or restarted
            return False

        await wait_for(new_leaders, timeout=60, what=f"new {stream} leaders")
        return time.time()

    await _scenario(cluster, f"SIGKILL the node leading {stream} at {at_ms} ms", at_ms, kill, back)


async def _valkey_primary(cluster: Cluster) -> tuple[str, tuple[str, int]]:
    """The process the Sentinels name the primary, and its address."""
    settings = cluster.settings
    address = await master_address(settings.redis_sentinels, settings.redis_master_name)
    assert address is not None
    name = next(
        name
        for name, service in cluster.services().items()
        if name.startswith("valkey") and service["address"].endswith(f":{address[1]}/0")
    )
    return name, address


async def test_killed_valkey_primary_costs_a_delay_never_a_trade(cluster: Cluster) -> None:
    """The supervisor restarts it from its append-only file before the Sentinels would
    fail over; the replica resynchronises and confirms the markers again."""
    await cluster.all_healthy()
    primary, _ = await _valkey_primary(cluster)

    async def kill() -> None:
        cluster.kill(primary)

    async def back() -> float:
        await wait_for(
            lambda: _primary_has_replica(cluster.settings),
            timeout=90,
            what="the primary back with its replica",
        )
        return time.time()

    await _scenario(cluster, "SIGKILL the Valkey primary at 100 ms", 100, kill, back)


async def test_lost_valkey_primary_fails_over_and_costs_a_delay_never_a_trade(
    cluster: Cluster,
) -> None:
    """The primary stops answering (as a machine that lost power): the Sentinels promote
    the replica; once they have, the old primary is killed, and its restart rejoins as the
    new primary's replica. No marker the old primary held alone was acted on."""
    await cluster.all_healthy()
    settings = cluster.settings
    primary, before = await _valkey_primary(cluster)
    pid = int(cluster.services()[primary]["pid"])

    async def kill() -> None:
        os.kill(pid, signal.SIGSTOP)

    async def back() -> float:
        async def promoted() -> bool:
            with contextlib.suppress(Exception):
                now = await master_address(settings.redis_sentinels, settings.redis_master_name)
                return now is not None and now != before
            return False

        try:
            await wait_for(promoted, timeout=90, what="the Sentinels to promote the replica")
        finally:
            os.kill(pid, signal.SIGKILL)  # its clients' connections break; it restarts
        await wait_for(
            lambda: _primary_has_replica(settings),
            timeout=90,
            what="the promoted primary with its replica",
        )
        return time.time()

    await _scenario(cluster, "Valkey primary lost at 100 ms, failover", 100, kill, back)


@pytest.mark.parametrize(("victim", "at_ms"), [("worker-deriv", 80), ("router-1", 0)])
async def test_killed_one_of_two_services_costs_a_delay_never_a_trade(
    cluster: Cluster, victim: str, at_ms: int
) -> None:
    """Its peer is up all along: it takes the orders (or the signal) over."""
    killed_at = 0.0

    async def kill() -> None:
        nonlocal killed_at
        cluster.kill(victim)
        killed_at = time.time()

    async def back() -> float:
        return killed_at

    await _scenario(cluster, f"SIGKILL {victim} (one of two) at {at_ms} ms", at_ms, kill, back)


async def test_nats_users_may_do_only_their_own_part(cluster: Cluster) -> None:
    settings = cluster.settings
    passwords = nats_users.ensure_passwords(cluster.data_dir)
    urls = settings.nats_url.split(",")
    ops = await connect(settings.nats_url, "perm-check", user="ops", password=passwords["ops"])
    try:
        js = ops.jetstream()
        before = {s: (await js.stream_info(s)).state.messages for s in ("ORDERS", "SIGNALS")}
        for user, subject in (("api", "orders.deriv.0"), ("worker-deriv", "signals.chan-x")):
            client = await connect(
                settings.nats_url, f"as-{user}", user=user, password=passwords[user]
            )
            try:
                # The server refuses the publish (a permissions violation on the
                # connection): no PubAck comes, and nothing is stored.
                with pytest.raises((NatsTimeout, NatsError)):
                    await client.jetstream().publish(subject, b"not allowed", timeout=3)
            finally:
                await client.close()
        after = {s: (await js.stream_info(s)).state.messages for s in ("ORDERS", "SIGNALS")}
        assert after == before, "a refused publish landed in a stream"
    finally:
        await ops.close()
    with pytest.raises(Exception, match=r"(?i)authoriz"):
        await nats.connect(urls, allow_reconnect=False, connect_timeout=5)
