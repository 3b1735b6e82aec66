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
import contextlib
import signal
from collections import Counter
from pathlib import Path

from apps.core.ids import new_id
from apps.core.messages import ExecutionState
from tests.fixtures.iq_orders import IQCopier, iq_copier, iq_signals, redis
from tests.fixtures.waiting import wait_for

__all__ = ["iq_copier", "redis"]


def _kill(process: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)


async def test_worker_killed_mid_fan_out_then_another_places_each_order_once(
    iq_copier: IQCopier, tmp_path: Path
) -> None:
    sim = iq_copier.sim
    accounts = await iq_copier.subscribers(10)
    signals = iq_signals(accounts, 6, "chan-" + new_id())
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
