"""1,000 orders in batches over 20 accounts: each bought exactly once, each reported once."""

from __future__ import annotations

import time

from apps.core.ids import new_id
from apps.core.messages import ExecutionState
from tests.fixtures.copier_harness import Copier

ACCOUNTS = 20
SIGNALS = 50  # x 20 subscribers = 1,000 orders
SHARDS = 2  # each signal's orders arrive as two OrderBatches of 10


async def test_thousand_orders_reach_one_final_state_and_one_contract_each(
    copier: Copier,
) -> None:
    accounts = await copier.subscribers(ACCOUNTS)
    signals = []
    for _ in range(SIGNALS):
        signal_id = new_id()
        signals.append([copier.order(a, signal_id, valid_for=30.0) for a in accounts])
    orders = [o for signal in signals for o in signal]

    async with copier.worker():
        started = time.perf_counter()
        for signal in signals:
            per_shard = len(signal) // SHARDS
            for shard in range(SHARDS):
                await copier.publish(
                    signal[shard * per_shard : (shard + 1) * per_shard], shard=shard
                )
        await copier.wait_final(orders, timeout=120)
        elapsed = time.perf_counter() - started

    finals = copier.final_states()
    assert {o.order_id: finals[o.order_id] for o in orders} == {
        o.order_id: {ExecutionState.PLACED} for o in orders
    }
    reports = [e for e in copier.events if e.state is ExecutionState.PLACED]
    assert len(reports) == len(orders)  # nothing reported twice either
    assert await copier.contracts_per_order() == {o.order_id: 1 for o in orders}
    print(f"\n{len(orders)} orders placed and reported in {elapsed:.2f}s")
