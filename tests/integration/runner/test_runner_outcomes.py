"""Every order ends in one visible final state, with the broker's own reason."""

from __future__ import annotations

from decimal import Decimal

from apps.core.ids import new_id
from apps.core.messages import ExecutionState, Order, Outcome
from tests.fixtures.copier_harness import Copier
from tests.fixtures.waiting import wait_for


async def test_orders_are_placed_and_reported_with_latency_and_contract(copier: Copier) -> None:
    accounts = await copier.subscribers(3)
    signal_id = new_id()
    orders = [copier.order(a, signal_id, stake="2.50") for a in accounts]

    async with copier.worker():
        await copier.publish(orders)
        await copier.wait_final(orders)

    for order in orders:
        placed = copier.final(order)
        assert placed.state is ExecutionState.PLACED
        assert placed.contract_id and placed.buy_price == Decimal("2.50")
        assert placed.payout is not None and placed.payout > placed.buy_price
        assert placed.stake == Decimal("2.50") and placed.currency == "USD"
        assert placed.latency_ms is not None and 0 < placed.latency_ms < 5000
        assert placed.at >= order.signal_created_at
    assert await copier.contracts_per_order() == {o.order_id: 1 for o in orders}


async def test_stale_order_places_nothing_and_expires(copier: Copier) -> None:
    [account] = await copier.subscribers(1)
    stale = copier.order(account, new_id(), valid_for=-1.0)

    async with copier.worker():
        await copier.publish([stale])
        await copier.wait_final([stale])

    expired = copier.final(stale)
    assert expired.state is ExecutionState.EXPIRED
    assert expired.reason == "signal expired before placement"
    assert await copier.sim.ledger() == []


async def test_transient_errors_are_retried_then_placed(copier: Copier) -> None:
    [account] = await copier.subscribers(1)
    order = copier.order(account, new_id(), valid_for=10.0)

    async with copier.worker():
        await copier.sim.faults(error_code="ContractCreationFailure", error_count=2)
        await copier.publish([order])
        await copier.wait_final([order])

    assert copier.final(order).state is ExecutionState.PLACED
    assert await copier.contracts_per_order() == {order.order_id: 1}


async def test_rate_limited_orders_are_retried_within_validity(copier: Copier) -> None:
    accounts = await copier.subscribers(2)
    orders = [copier.order(a, new_id(), valid_for=10.0) for a in accounts]

    async with copier.worker():
        await copier.sim.faults(error_code="RateLimit", error_count=2)
        for order in orders:
            await copier.publish([order])
        await copier.wait_final(orders)

    assert {copier.final(o).state for o in orders} == {ExecutionState.PLACED}
    assert await copier.contracts_per_order() == {o.order_id: 1 for o in orders}


async def test_permanent_errors_are_rejected_with_the_brokers_message(copier: Copier) -> None:
    [poor] = await copier.subscribers(1, balance="0.50")
    [closed] = await copier.subscribers(1)
    too_poor = copier.order(poor, new_id(), stake="1.00")
    market_closed = copier.order(closed, new_id())

    async with copier.worker():
        await copier.publish([too_poor])
        await copier.wait_final([too_poor])
        await copier.sim.faults(error_code="MarketIsClosed", error_count=1)
        await copier.publish([market_closed])
        await copier.wait_final([market_closed])

    rejected = copier.final(too_poor)
    assert rejected.state is ExecutionState.REJECTED
    assert rejected.reason is not None
    assert rejected.reason.startswith("InsufficientBalance: Your account balance (USD0.50)")
    closed_reason = copier.final(market_closed).reason
    assert closed_reason == "MarketIsClosed: This market is presently closed."
    assert await copier.sim.ledger() == []


async def test_unknown_broker_account_fails_without_a_broker_call(copier: Copier) -> None:
    order = copier.order("ba-nobody", new_id())

    async with copier.worker():
        await copier.publish([order])
        await copier.wait_final([order])

    failed = copier.final(order)
    assert (failed.state, failed.reason) == (ExecutionState.FAILED, "broker account not found")
    assert (await copier.sim.stats())["buys"] == 0


async def test_placed_contracts_settle_with_outcome_and_profit(copier: Copier) -> None:
    accounts = await copier.subscribers(4)
    winners = [copier.order(a, new_id(), stake="2.00") for a in accounts[:2]]
    losers = [copier.order(a, new_id(), stake="3.00") for a in accounts[2:]]

    def settled(orders: list[Order]) -> bool:
        by_order = copier.by_order()
        return all(
            any(e.state is ExecutionState.SETTLED for e in by_order.get(o.order_id, []))
            for o in orders
        )

    async with copier.worker():
        await copier.sim.faults(force_outcome="won")
        await copier.publish(winners)
        await wait_for(lambda: settled(winners), timeout=60, what="winners settled")
        await copier.sim.faults(force_outcome="lost")
        await copier.publish(losers)
        await wait_for(lambda: settled(losers), timeout=60, what="losers settled")

        async def none_pending() -> bool:
            return await copier.pending_settlements() == 0

        await wait_for(none_pending, timeout=60, what="pending settlements removed")

    for order in winners + losers:
        executions = copier.by_order()[order.order_id]
        placed = next(e for e in executions if e.state is ExecutionState.PLACED)
        [result] = [e for e in executions if e.state is ExecutionState.SETTLED]
        assert result.contract_id == placed.contract_id
        assert placed.payout is not None
        if order in winners:
            assert result.outcome is Outcome.WON
            assert result.profit == placed.payout - Decimal("2.00")
        else:
            assert result.outcome is Outcome.LOST
            assert result.profit == Decimal("-3.00")
