"""A process or server killed in the middle of a fan-out: every order still reaches one
final state that agrees with the broker, and a crash costs a delay, never a trade.

Each test sends one signal to 1,000 subscriptions (one broker account each, as the API
allows per channel) with the Deriv simulator answering after 50 ms, SIGKILLs one part of
the stack at a set moment after the signal was accepted, brings it back a second later
(as `copier up`'s supervisor does) and then holds the system to what a subscriber and a
provider are promised:

- every order has exactly one final state, and the ledger's counts say the same;
- the simulator booked exactly one contract per placed order, and every contract it
  booked is recorded as that order's placement (none booked behind our back);
- nothing was placed after the signal's ``valid_until``;
- no order expired that was still valid when the killed part was back up.

The time from the signal to the last final state is written to
``test-artifacts/faults.json`` (``benchmarks/README.md`` shows the figures).
NATS and Valkey are private to each test here: they are the ones killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from apps.brokers.deriv.adapter import order_of_contract
from apps.core import embedded
from apps.core.embedded import PROJECT_ROOT
from apps.core.ids import new_id
from apps.core.messages import (
    ExecutionBatch,
    ExecutionState,
    Signal,
    encode,
    execution_event_decoder,
)
from apps.core.nats import connect, ensure_topology
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.signal_stats import signal_counts_from
from apps.core.topology import Topology
from tests.fixtures.deriv_sim import SimHandle
from tests.fixtures.factories import make_signal
from tests.fixtures.pipeline import Pipeline, seed_subscribers
from tests.fixtures.waiting import wait_for

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
    nats_port, monitor, redis_port = (embedded.free_port() for _ in range(3))
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


@dataclass
class Run:
    signal: Signal
    accepted_at: float
    replacement_up: float | None = None  # when the killed part was back


async def _kill_mid_fanout(
    stack: Pipeline, run: Run, at_ms: float, kill: Callable[[], Awaitable[None]]
) -> None:
    """Kill at ``at_ms`` after the signal was accepted, while its orders are unfinished."""
    await asyncio.sleep(max(0.0, run.accepted_at + at_ms / 1000 - time.time()))
    before = await _counts(stack, run.signal.signal_id)
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
    return Run(sent, time.time())


async def _restart_service(stack: Pipeline, nc: NATS, name: str, run: Run) -> None:
    await asyncio.sleep(RESTART_AFTER)
    await stack.stop(name)  # reaps the killed process
    await stack.start(name, **(WORKER if name.startswith("worker") else {}))
    await stack.ready(nc)
    run.replacement_up = time.time()


async def _counts(stack: Pipeline, signal_id: str) -> dict[str, Any]:
    redis = connect_redis(stack.settings.redis_url)
    try:
        raw = await redis.hgetall(Topology(stack.settings.namespace).signal_stats_key(signal_id))
    finally:
        await redis.aclose()
    return signal_counts_from(raw)


async def _final_states(nc: NATS, topology: Topology, signal_id: str) -> dict[str, list[Any]]:
    """Every order's reported states, read from the EXECUTIONS stream from its start."""
    js = nc.jetstream()
    stream = topology.stream("EXECUTIONS")
    last = (await js.stream_info(stream)).state.last_seq
    by_order: dict[str, list[Any]] = {}
    sub = await js.subscribe(
        topology.subject("executions", ">"), ordered_consumer=True, stream=stream
    )
    try:
        while True:
            msg = await sub.next_msg(timeout=30)
            event = execution_event_decoder.decode(msg.data)
            if isinstance(event, ExecutionBatch) and event.signal_id == signal_id:
                for e in event.executions:
                    if e.state is not ExecutionState.SETTLED:
                        by_order.setdefault(e.order_id, []).append(e)
            if msg.metadata.sequence.stream >= last:
                return by_order
    finally:
        await sub.unsubscribe()


async def _check(stack: Pipeline, sim: SimHandle, run: Run, fault: str) -> None:
    signal_id = run.signal.signal_id

    async def done() -> bool:
        try:
            return bool((await _counts(stack, signal_id))["done"])
        except Exception:
            return False  # Valkey on its way back

    with contextlib.suppress(AssertionError):  # what is missing is told below
        await wait_for(done, timeout=120, what=f"every order of the signal final after {fault}")
    finished = time.time()
    counts = (await _counts(stack, signal_id))["counts"]
    nc = await connect(stack.settings.nats_url, name="fault-check")
    try:
        by_order = await _final_states(nc, Topology(stack.settings.namespace), signal_id)
    finally:
        await nc.close()

    # One final state per order, the same each time it was reported, and the counts agree.
    assert len(by_order) == SUBSCRIBERS == counts["total"], (len(by_order), counts)
    states = {oid: {e.state for e in reports} for oid, reports in by_order.items()}
    assert all(len(s) == 1 for s in states.values()), [s for s in states.values() if len(s) > 1]
    final = {oid: reports[0] for oid, reports in by_order.items()}
    tally = {state.value: 0 for state in ExecutionState if state is not ExecutionState.SETTLED}
    for execution in final.values():
        tally[execution.state.value] += 1
    assert {k: counts[k] for k in tally} == tally, (counts, tally)

    # The broker's books: one contract per placed order, every contract recorded.
    ledger = [
        c for c in await sim.ledger() if (c.get("passthrough") or {}).get("signal_id") == signal_id
    ]
    booked: dict[str, list[dict[str, Any]]] = {}
    for contract in ledger:
        order_id = order_of_contract(contract["passthrough"], contract["loginid"]) or "?"
        booked.setdefault(order_id, []).append(contract)
    assert all(len(c) == 1 for c in booked.values()), "an order was bought twice"
    placed = {oid for oid, e in final.items() if e.state is ExecutionState.PLACED}
    assert set(booked) == placed, (
        f"booked but not recorded placed: {len(set(booked) - placed)}, "
        f"recorded placed but not booked: {len(placed - set(booked))}; "
        f"states of the first: {[final[o].state for o in list(set(booked) - placed)[:5]]}"
    )
    for order_id, [contract] in booked.items():
        assert str(final[order_id].contract_id) == str(contract["contract_id"])
        assert contract["purchase_time_ms"] / 1000 <= run.signal.valid_until

    # A crash costs a delay, never a trade.
    back = run.replacement_up or run.accepted_at
    needless = [
        e
        for e in final.values()
        if e.state is ExecutionState.EXPIRED and run.signal.valid_until > back
    ]
    assert not needless, f"{len(needless)} orders expired although still valid when taken over"
    assert tally["unknown"] == 0 and tally["failed"] == 0, tally
    assert tally["placed"] + tally["expired"] == SUBSCRIBERS, tally

    _record(fault, run, finished, tally)


def _record(fault: str, run: Run, finished: float, tally: dict[str, int]) -> None:
    ARTIFACT.parent.mkdir(exist_ok=True)
    with ARTIFACT.open("a") as out:
        out.write(
            json.dumps(
                {
                    "fault": fault,
                    "subscribers": SUBSCRIBERS,
                    "latency_ms": LATENCY_MS,
                    "validity_s": VALIDITY,
                    "back_up_s": run.replacement_up
                    and round(run.replacement_up - run.accepted_at, 3),
                    "time_to_final_s": round(finished - run.accepted_at, 3),
                    "states": tally,
                    "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            )
            + "\n"
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
