"""A process or server killed in the middle of a fan-out: every order still reaches one
final state that agrees with the broker, and a crash costs a delay, never a trade.

Each test sends one signal to 1,000 subscriptions (one broker account each, as the API
allows per channel) with the Deriv simulator answering after 50 ms, SIGKILLs one part of
the stack at a set moment after the signal was accepted, brings it back a second later
(as `copier up`'s supervisor does) and then holds the system to what a subscriber and a
provider are promised (``tests/fixtures/fault_checks.py``: every order final once, one
contract per placed order, nothing placed late, nothing expired that was still valid).

The time from the signal to the last final state is written to
``test-artifacts/faults.json`` (``benchmarks/README.md`` shows the figures).
NATS and Valkey are private to each test here: they are the ones killed.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS

from apps.core import embedded
from apps.core.embedded import PROJECT_ROOT
from apps.core.ids import new_id
from apps.core.messages import (
    encode,
)
from apps.core.nats import connect, ensure_topology
from apps.core.settings import Settings
from apps.core.topology import Topology
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.factories import make_signal
from tests.fixtures.fault_checks import Run, check_every_order_final, record, signal_counts
from tests.fixtures.pipeline import Pipeline, seed_subscribers

# Seeding 1,000 broker accounts and starting three services come before the fault.
pytestmark = [pytest.mark.faults, pytest.mark.timeout(400)]

SUBSCRIBERS = 1000
LATENCY_MS = 50
# Two 64-order batch buys at the broker at a time: the placements take 8 rounds of 50 ms
# or more, so the moments the faults are set at fall inside the fan-out however fast the
# machine (at the default 1,024 they could all be over in 100 ms).
WORKER = {"WORKER_CONCURRENCY": "128"}
VALIDITY = 8.0
RESTART_AFTER = 1.0  # as the supervisor's first back-off
ARTIFACT = PROJECT_ROOT / "test-artifacts" / "faults.json"


@dataclass
class OwnServers:
    """A nats-server and a valkey-server of this test's own, restartable in place."""

    root: Path
    specs: dict[str, embedded.ProcessSpec]
    monitor_port: int
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    async def start(self, name: str) -> None:
        log = (self.root / f"{name}.log").open("ab")
        try:
            self.processes[name] = await embedded.spawn(self.specs[name], stdout=log.fileno())
        finally:
            log.close()
        check = (
            (lambda: embedded.nats_healthy(self.monitor_port))
            if name == "nats"
            else (lambda: embedded.redis_healthy(self.specs["valkey"].address))
        )
        await embedded.wait_healthy(check, 60, name)

    async def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        await process.wait()

    async def stop_all(self) -> None:
        for name in list(self.processes):
            await self.kill(name)


@pytest.fixture
async def own_servers(tmp_path: Path) -> AsyncIterator[OwnServers]:
    root = tmp_path / "servers"
    root.mkdir()
    nats_port, monitor, redis_port = embedded.free_ports(3)
    servers = OwnServers(
        root,
        {
            "nats": embedded.nats_spec(root, nats_port, monitor),
            "valkey": embedded.valkey_spec(root, redis_port),
        },
        monitor,
    )
    try:
        for name in servers.specs:
            await servers.start(name)
        yield servers
    finally:
        await servers.stop_all()


@pytest.fixture
async def stack(
    settings: Settings, own_servers: OwnServers, sim: SimHandle, tmp_path: Path
) -> AsyncIterator[Pipeline]:
    running = Pipeline(
        replace(
            settings,
            nats_url=own_servers.specs["nats"].address,
            redis_url=own_servers.specs["valkey"].address,
            deriv_url=sim.url,
            signal_validity_seconds=VALIDITY,
        ),
        tmp_path,
    )
    try:
        yield running
    finally:
        await running.stop_all()


async def _kill_mid_fanout(
    stack: Pipeline, run: Run, at_ms: float, kill: Callable[[], Awaitable[None]]
) -> None:
    """Kill at ``at_ms`` after the signal was accepted, while its orders are unfinished."""
    await asyncio.sleep(max(0.0, run.accepted_at + at_ms / 1000 - time.time()))
    before = await signal_counts(stack.settings, run.signal_id)
    await kill()
    assert not before["done"], "the fan-out was over before the fault: nothing was tested"


async def _prepare(
    stack: Pipeline, sim: SimHandle, nc: NATS, workers: tuple[str, ...] = ("worker",)
) -> str:
    channel = "chan-" + new_id()
    await ensure_topology(nc, Topology(stack.settings.namespace))
    await seed_subscribers(stack.settings, sim, channel, count=SUBSCRIBERS, accounts=SUBSCRIBERS)
    await stack.start("router")
    await stack.start("ledger")
    for name in workers:
        await stack.start(name, "worker", **WORKER)
    await stack.ready(nc)
    await sim.faults(latency_ms=LATENCY_MS)
    return channel


async def _send(nc: NATS, topology: Topology, channel: str) -> Run:
    """What the API does once a signal passed its checks; the PubAck is the 202."""
    # A synthetic index: the simulator closes forex at weekends.
    sent = make_signal(channel, valid_for=VALIDITY, stake="1", asset="R_100")
    await nc.jetstream().publish(
        topology.signal_subject(channel), encode(sent), headers={"Nats-Msg-Id": sent.signal_id}
    )
    return Run(sent.signal_id, sent.valid_until, time.time())


async def _restart_service(stack: Pipeline, nc: NATS, name: str, run: Run) -> None:
    await asyncio.sleep(RESTART_AFTER)
    await stack.stop(name)  # reaps the killed process
    await stack.start(name, **(WORKER if name.startswith("worker") else {}))
    await stack.ready(nc)
    run.replacement_up = time.time()


async def _check(stack: Pipeline, sim: SimHandle, run: Run, fault: str) -> None:
    tally, finished = await check_every_order_final(stack.settings, run, SUBSCRIBERS, sim.ledger)
    record(
        ARTIFACT,
        fault,
        run,
        finished,
        subscribers=SUBSCRIBERS,
        latency_ms=LATENCY_MS,
        validity_s=VALIDITY,
        states=tally,
    )


@pytest.mark.parametrize(("victim", "at_ms"), [("router", 0), ("worker", 80), ("worker", 300)])
async def test_killed_service_mid_fanout_costs_a_delay_never_a_trade(
    stack: Pipeline, sim: SimHandle, nc_own: NATS, victim: str, at_ms: int
) -> None:
    channel = await _prepare(stack, sim, nc_own)
    run = await _send(nc_own, Topology(stack.settings.namespace), channel)

    async def kill() -> None:
        stack.kill(victim)

    await _kill_mid_fanout(stack, run, at_ms, kill)
    await _restart_service(stack, nc_own, victim, run)
    await _check(stack, sim, run, f"SIGKILL {victim} at {at_ms} ms")


@pytest.mark.parametrize(
    ("server", "at_ms", "away"),
    [
        ("valkey", 100, RESTART_AFTER),
        # Longer than any redelivery count would wait: orders already at the broker must
        # still be recorded, the rest expire (their signal is over before Valkey is back).
        ("valkey", 100, 15.0),
        ("nats", 50, RESTART_AFTER),
    ],
)
async def test_killed_server_mid_fanout_costs_a_delay_never_a_trade(
    stack: Pipeline,
    own_servers: OwnServers,
    sim: SimHandle,
    nc_own: NATS,
    server: str,
    at_ms: int,
    away: float,
) -> None:
    channel = await _prepare(stack, sim, nc_own)
    run = await _send(nc_own, Topology(stack.settings.namespace), channel)
    await _kill_mid_fanout(stack, run, at_ms, partial(own_servers.kill, server))
    await asyncio.sleep(away)
    await own_servers.start(server)
    run.replacement_up = time.time()
    await _check(stack, sim, run, f"SIGKILL {server} at {at_ms} ms, back after {away:g} s")


async def test_a_surviving_worker_takes_over_a_dead_peers_orders(
    stack: Pipeline, sim: SimHandle, nc_own: NATS
) -> None:
    channel = await _prepare(stack, sim, nc_own, workers=("worker-a", "worker-b"))
    run = await _send(nc_own, Topology(stack.settings.namespace), channel)

    async def kill() -> None:
        stack.kill("worker-a")
        run.replacement_up = time.time()  # worker-b is up all along

    await _kill_mid_fanout(stack, run, 80, kill)
    await _check(stack, sim, run, "SIGKILL one of two workers at 80 ms, no restart")


async def test_replies_lost_after_booking_are_recorded_once(
    stack: Pipeline, sim: SimHandle, nc_own: NATS
) -> None:
    channel = await _prepare(stack, sim, nc_own)
    # The next buys are booked, then the connection drops before their answer.
    await sim.faults(latency_ms=LATENCY_MS, drop_mid_buy=5)
    run = await _send(nc_own, Topology(stack.settings.namespace), channel)
    await _check(stack, sim, run, "replies dropped after booking")


@pytest.fixture
async def nc_own(stack: Pipeline) -> AsyncIterator[NATS]:
    """The test's own client of the test's own NATS (it reconnects across a restart)."""
    client = await connect(stack.settings.nats_url, name="fault-test")
    try:
        yield client
    finally:
        await client.close()
