"""1,000 orders over 50 accounts with bounded concurrency, one-by-one and batched.

Also the measurement behind keeping ``buy_contract_for_multiple_accounts``: the same
load is placed with single buys and with batches, and both times are printed (run with
``-s`` to see them).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from apps.brokers.base import OrderRequest, Placed, place_until_valid
from apps.brokers.deriv.adapter import DerivAdapter, order_of_contract
from tests.fixtures.deriv_sim import SimHandle, make_order

ACCOUNTS = 50
SIGNALS = 20  # x 50 accounts = 1,000 orders
CONCURRENCY = 64


async def _orders(sim: SimHandle) -> list[list[OrderRequest]]:
    accounts = await asyncio.gather(*(sim.account(balance="10000") for _ in range(ACCOUNTS)))
    return [
        [make_order(a, signal_id=f"signal-{s}", valid_for=30.0) for a in accounts]
        for s in range(SIGNALS)
    ]


async def _assert_each_bought_once(sim: SimHandle, signals: list[list[OrderRequest]]) -> None:
    ledger = await sim.ledger()
    expected = {o.order_id for signal in signals for o in signal}
    bought: Counter[str] = Counter()
    for row in ledger:
        bought[order_of_contract(row["passthrough"], row["loginid"]) or "?"] += 1
    assert set(bought) == expected
    assert set(bought.values()) == {1}


@pytest.mark.parametrize("batched", [False, True], ids=["single-buys", "batched"])
async def test_thousand_orders_over_fifty_accounts(sim: SimHandle, batched: bool) -> None:
    adapter = DerivAdapter(sim.url, reply_timeout=10.0)
    signals = await _orders(sim)
    # Sessions are opened once per account and reused, as a worker keeps them.
    await asyncio.gather(*(adapter.connect(o.account) for o in signals[0]))
    limit = asyncio.Semaphore(CONCURRENCY)
    in_flight = peak = 0

    async def one(order: OrderRequest) -> object:
        nonlocal in_flight, peak
        async with limit:
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                return await place_until_valid(adapter, order)
            finally:
                in_flight -= 1

    started = time.perf_counter()
    if batched:
        outcomes = [
            o
            for batch in await asyncio.gather(*(adapter.place_many(signal) for signal in signals))
            for o in batch
        ]
    else:
        outcomes = list(await asyncio.gather(*(one(o) for signal in signals for o in signal)))
    elapsed = time.perf_counter() - started
    await adapter.close()

    assert all(isinstance(o, Placed) for o in outcomes)
    assert len(outcomes) == ACCOUNTS * SIGNALS
    assert peak <= CONCURRENCY
    await _assert_each_bought_once(sim, signals)
    print(
        f"\n{'batched' if batched else 'single buys'}: {len(outcomes)} orders in "
        f"{elapsed:.2f}s ({len(outcomes) / elapsed:.0f}/s), "
        f"simulator messages {(await sim.stats())['messages']}"
    )
