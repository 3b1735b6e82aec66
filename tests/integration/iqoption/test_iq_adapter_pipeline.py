"""``worker-iqoption`` end to end: real nats-server and Valkey, the worker as real
processes (``python -m apps.brokers.iqoption.worker``), orders published on
``orders.iqoption.*`` as the router publishes them, and the real IQ Option simulator.

The first worker is SIGKILLed in the middle of the fan-out, with buys at the broker; a
second one takes its orders over. Every order must end in exactly one final state, and
the simulator's ledger (``GET /admin/ledger``, each option with the order it was bought
for) must hold exactly one option per placed order and none for any other.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from nats.aio.client import Client as NATS
from redis.asyncio import Redis

from apps.brokers.credentials import RedisCredentialStore
from apps.brokers.markers import unpack_marker
from apps.core.brokers.iqoption import legal_expiries
from apps.core.credentials import CredentialsCipher
from apps.core.ids import new_id
from apps.core.messages import (
    FINAL_STATES,
    ExecutionBatch,
    ExecutionState,
    Order,
    OrderBatch,
    encode,
    execution_event_decoder,
)
from apps.core.redis import connect_redis
from apps.core.settings import Settings
from apps.core.topology import Topology
from tests.fixtures.factories import make_order
from tests.fixtures.fault_checks import reported_states
from tests.fixtures.iqoption_sim import IQOptionSim
from tests.fixtures.waiting import wait_for

# Short enough for tests, long enough for a loaded 2-core machine.
LEASE = 1.5
CALL_TIMEOUT = 4.0


class IQCopier:
    """What the rest of the system would be for the IQ Option workers: sealed credentials
    in Valkey, the router's publishes on ORDERS, the sim's ledger."""

    def __init__(self, settings: Settings, nc: NATS, redis: Redis, sim: IQOptionSim) -> None:
        self.settings = settings
        self.nc = nc
        self.js = nc.jetstream()
        self.redis = redis
        self.sim = sim
        self.topology = Topology(settings.namespace)
        key = os.urandom(32)
        self.key_b64 = base64.b64encode(key).decode()
        self.store = RedisCredentialStore(
            redis,
            self.topology,
            CredentialsCipher({settings.credentials_key_id: key}, settings.credentials_key_id),
            kind="iqoption",
        )

    async def subscribers(self, count: int) -> list[str]:
        ids = []
        for account in await self.sim.create_accounts(count):
            account_id = "ba-" + new_id()
            await self.store.put(
                account_id, login=account.email, password=account.password, balance_type="practice"
            )
            ids.append(account_id)
        return ids

    async def publish(self, orders: list[Order], shard: int = 0) -> None:
        batch = OrderBatch(
            signal_id=orders[0].signal_id, broker_kind="iqoption", shard=shard, orders=orders
        )
        await self.js.publish(
            self.topology.order_subject("iqoption", shard),
            encode(batch),
            headers={"Nats-Msg-Id": f"{batch.signal_id}.{shard}"},
        )

    async def spawn_worker(self, worker_id: str, log_dir: Path) -> asyncio.subprocess.Process:
        env = {
            **os.environ,
            **self.settings.as_env(),
            "IQOPTION_LOGIN_URL": self.sim.login_url,
            "IQOPTION_WS_URL": self.sim.ws_url,
            "WORKER_ID": worker_id,
            "CREDENTIALS_KEY": self.key_b64,
            "BROKER_CALL_TIMEOUT": str(CALL_TIMEOUT),
            "WORKER_LEASE_SECONDS": str(LEASE),
            "WORKER_CONCURRENCY": "10",
            "LOG_LEVEL": "INFO",
        }
        with (log_dir / f"{worker_id}.log").open("ab") as log:
            return await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "apps.brokers.iqoption.worker",
                env=env,
                stdout=log,
                stderr=log,
            )

    async def in_flight(self, orders: list[Order]) -> bool:
        for order in orders:
            raw = await self.redis.get(self.topology.order_marker_key(order.order_id))
            if raw is not None and unpack_marker(raw, order).status == "inflight":
                return True
        return False

    async def final_states(self, signal_ids: list[str]) -> dict[str, set[ExecutionState]]:
        """Every order's final states as reported on EXECUTIONS (read message by message,
        as the fault checks do)."""
        if (await self.js.stream_info(self.topology.stream("EXECUTIONS"))).state.messages == 0:
            return {}
        finals: dict[str, set[ExecutionState]] = {}
        for signal_id in signal_ids:
            by_order = await reported_states(self.nc, self.topology, signal_id)
            for order_id, executions in by_order.items():
                states = {e.state for e in executions if e.state in FINAL_STATES}
                if states:
                    finals[order_id] = states
        return finals

    async def settled(self, signal_ids: list[str]) -> int:
        """How many settlements of these signals were reported on EXECUTIONS."""
        stream = self.topology.stream("EXECUTIONS")
        state = (await self.js.stream_info(stream)).state
        wanted = set(signal_ids)
        count = 0
        for seq in range(max(state.first_seq, 1), state.last_seq + 1):
            event = execution_event_decoder.decode((await self.js.get_msg(stream, seq)).data or b"")
            if isinstance(event, ExecutionBatch) and event.signal_id in wanted:
                count += sum(e.state is ExecutionState.SETTLED for e in event.executions)
        return count


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = connect_redis(settings.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def iq_copier(settings: Settings, nc: NATS, redis: Redis, iqoption_sim: IQOptionSim) -> IQCopier:
    return IQCopier(settings, nc, redis, iqoption_sim)


def _signals(accounts: list[str], count: int, channel_id: str) -> list[list[Order]]:
    """``count`` signals of one order per account. A stake per signal: reconciliation
    matches options by their terms, so each account's options of different signals stay
    distinguishable. The expiry is the third turbo boundary: on sale for two minutes."""
    expiry_at = legal_expiries(time.time())[2].at
    signals = []
    for i in range(count):
        signal_id = new_id()
        stake = str(Decimal("1.00") + Decimal(i) / 100)
        signals.append(
            [
                msgspec.structs.replace(
                    make_order(
                        signal_id=signal_id,
                        subscription_id="sub-" + new_id(),
                        account=account,
                        channel_id=channel_id,
                        user_id="user-" + account,
                        stake=stake,
                        valid_for=40.0,
                        expiry_seconds=60,
                    ),
                    broker_kind="iqoption",
                    asset="EURUSD",
                    expiry_at=expiry_at,
                )
                for account in accounts
            ]
        )
    return signals


def _kill(process: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)


async def test_worker_killed_mid_fan_out_then_another_places_each_order_once(
    iq_copier: IQCopier, tmp_path: Path
) -> None:
    sim = iq_copier.sim
    accounts = await iq_copier.subscribers(10)
    signals = _signals(accounts, 6, "chan-" + new_id())
    orders = [o for s in signals for o in s]
    signal_ids = [s[0].signal_id for s in signals]
    # Slow answers, and a few replies lost after the sale: buys are at the broker when
    # the worker dies, and some need reconciling.
    await sim.set_faults(latency_ms=200, drop_mid_buy=3)
    for batch in signals:
        await iq_copier.publish(batch)

    first = await iq_copier.spawn_worker("iq-killed", tmp_path)
    try:

        async def mid_fan_out() -> bool:
            if len(await sim.ledger()) < 20:
                return False
            return await iq_copier.in_flight(orders)

        await wait_for(mid_fan_out, timeout=90, what="the first worker to be mid fan-out")
    finally:
        _kill(first, signal.SIGKILL)
        await first.wait()
    at_kill = len(await sim.ledger())
    assert at_kill < len(orders), "the worker finished before it could be killed"

    survivor = await iq_copier.spawn_worker("iq-survivor", tmp_path)
    try:
        wanted = {o.order_id for o in orders}

        async def all_final() -> bool:
            return wanted <= set(await iq_copier.final_states(signal_ids))

        await wait_for(all_final, timeout=180, what="every order final")
        # The options run about 3 s here: the survivor follows its own to settlement.
        await wait_for(
            lambda: iq_copier.settled(signal_ids), timeout=120, what="settlements reported"
        )
    finally:
        _kill(survivor, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(survivor.wait(), 60)
        _kill(survivor, signal.SIGKILL)

    finals = await iq_copier.final_states(signal_ids)
    assert all(len(finals[o.order_id]) == 1 for o in orders)  # one final state each
    ledger = await sim.ledger()
    sold = Counter(row["request_id"] for row in ledger)
    assert set(sold.values()) == {1}, "an order was bought twice"
    assert set(sold) <= {o.order_id for o in orders}
    placed = {o.order_id for o in orders if finals[o.order_id] == {ExecutionState.PLACED}}
    # Valid for 40 s, taken over within seconds: a crash costs a delay, never a trade.
    assert placed == {o.order_id for o in orders}, Counter(
        next(iter(s)).value for s in finals.values()
    )
    assert set(sold) == placed
    valid_until = {o.order_id: o.valid_until for o in orders}
    assert all(row["created"] <= valid_until[row["request_id"]] for row in ledger)
