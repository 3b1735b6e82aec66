"""Real worker processes: killed mid-batch, or stopped with SIGTERM while orders are in flight."""

from __future__ import annotations

import asyncio
import signal
from decimal import Decimal
from pathlib import Path

from apps.brokers.markers import unpack_marker
from apps.core.ids import new_id
from apps.core.messages import ExecutionState, Order
from tests.fixtures.copier_harness import Copier, kill
from tests.fixtures.waiting import wait_for


async def _signals(
    copier: Copier, accounts: list[str], count: int, **terms: object
) -> list[list[Order]]:
    signals = []
    for i in range(count):
        signal_id = new_id()
        # A stake per signal: reconciliation matches contracts by their terms, so each
        # account's contracts of different signals stay distinguishable.
        stake = str(Decimal("1.00") + Decimal(i) / 100)
        signals.append([copier.order(a, signal_id, stake=stake, **terms) for a in accounts])  # type: ignore[arg-type]
    return signals


async def _bought(copier: Copier) -> int:
    return len(await copier.sim.ledger())


async def _in_flight(copier: Copier, orders: list[Order]) -> list[bytes]:
    markers = [
        (o, await copier.redis.get(copier.topology.order_marker_key(o.order_id))) for o in orders
    ]
    return [m for o, m in markers if m is not None and unpack_marker(m, o).status == "inflight"]


async def test_worker_killed_mid_batch_then_another_finishes_without_duplicates(
    copier: Copier, tmp_path: Path
) -> None:
    accounts = await copier.subscribers(10)
    # Valid for longer than AckWait (15 s): the killed worker's fetched batches come back
    # only after it, and should still be placed rather than expire.
    signals = await _signals(copier, accounts, 12, valid_for=40.0)
    orders = [o for s in signals for o in s]
    await copier.sim.faults(latency_ms=200)
    for batch in signals:
        await copier.publish(batch)

    first = await copier.spawn_worker("w-killed", tmp_path, WORKER_CONCURRENCY="10")
    try:

        async def mid_batch() -> bool:
            # Some bought, and some at the broker right now: the moment to pull the plug.
            if await _bought(copier) < 30:
                return False
            return bool(await _in_flight(copier, orders))

        await wait_for(mid_batch, timeout=60, what="the first worker to be mid-batch")
    finally:
        kill(first, signal.SIGKILL)
        await first.wait()
    at_kill = await _bought(copier)
    assert at_kill < len(orders), "the worker finished before it could be killed"
    assert await _in_flight(copier, orders), "killed between two batches: nothing was in flight"

    async with copier.worker("w-survivor"):
        await copier.wait_final(orders, timeout=120)

    finals = copier.final_states()
    assert all(len(finals[o.order_id]) == 1 for o in orders)  # one final state each
    bought = await copier.contracts_per_order()
    assert set(bought.values()) == {1}  # never two contracts for an order
    for order in orders:
        state = next(iter(finals[order.order_id]))
        assert state is ExecutionState.PLACED, (order.order_id, state)
        assert bought[order.order_id] == 1


async def test_sigterm_finishes_in_flight_orders_and_leaves_settlements(
    copier: Copier, tmp_path: Path
) -> None:
    accounts = await copier.subscribers(10)
    # 180 s contracts run 6 s here: still open when the worker has gone.
    signals = await _signals(copier, accounts, 6, valid_for=20.0, expiry_seconds=180)
    orders = [o for s in signals for o in s]
    await copier.sim.faults(latency_ms=200, force_outcome="won")
    for batch in signals:
        await copier.publish(batch)

    worker = await copier.spawn_worker("w-stopped", tmp_path, WORKER_CONCURRENCY="10")
    try:

        async def in_flight() -> bool:
            return await _bought(copier) >= 10

        await wait_for(in_flight, timeout=60, what="orders in flight")
        kill(worker, signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), 60) == 0
    finally:
        kill(worker, signal.SIGKILL)

    # Everything it had taken was finished, reported and acked before it exited.
    assert {o.order_id: copier.final_states().get(o.order_id) for o in orders} == {
        o.order_id: {ExecutionState.PLACED} for o in orders
    }
    assert await copier.contracts_per_order() == {o.order_id: 1 for o in orders}
    orders_left = await copier.js.stream_info(copier.topology.stream("ORDERS"))
    assert orders_left.state.messages == 0
    pending = await copier.pending_settlements()
    assert pending > 0  # contracts still open: left for the next worker

    async with copier.worker("w-next"):

        async def all_settled() -> bool:
            by_order = copier.by_order()
            return (
                all(
                    any(e.state is ExecutionState.SETTLED for e in by_order[o.order_id])
                    for o in orders
                )
                and await copier.pending_settlements() == 0
            )

        await wait_for(all_settled, timeout=60, what="settlements resumed by the next worker")
    log = (tmp_path / "w-stopped.log").read_text()
    assert "draining" in log or "stopped" in log
