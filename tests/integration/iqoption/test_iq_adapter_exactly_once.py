"""Exactly one option per placed order, none for a rejected one, whatever the socket does:
replies lost after the sale, connections dropped mid fan-out, replies slower than the
adapter waits. Each is proven against the simulator's ledger (``GET /admin/ledger``),
whose ``request_id`` names the order each option was bought for."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import Any

from apps.brokers.base import (
    Expired,
    Found,
    OrderRequest,
    Placed,
    PlaceOutcome,
    Rejected,
    TransientFailure,
    Uncertain,
    place_until_valid,
)
from apps.brokers.iqoption.adapter import IQOptionAdapter
from tests.fixtures.iq_orders import broker_account, iq_adapter, make_iq_order
from tests.fixtures.iqoption_sim import IQOptionSim

__all__ = ["iq_adapter"]


def assert_exactly_once(
    orders: Sequence[OrderRequest], outcomes: Sequence[PlaceOutcome], ledger: list[dict[str, Any]]
) -> None:
    """One option per placed order (the one reported), none for an order that ended
    without one, and nothing sold for anything but these orders."""
    sold = Counter(row["request_id"] for row in ledger)
    option_of = {row["request_id"]: str(row["option_id"]) for row in ledger}
    assert set(sold) <= {o.order_id for o in orders}
    assert all(n == 1 for n in sold.values()), sold
    for order, outcome in zip(orders, outcomes, strict=True):
        match outcome:
            case Placed(contract_id=contract_id):
                assert option_of.get(order.order_id) == contract_id, outcome
            case Rejected() | Expired() | TransientFailure():
                assert order.order_id not in sold, outcome
            case Uncertain():
                pass  # reported unknown: at most one (checked above), never retried
    contracts = [o.contract_id for o in outcomes if isinstance(o, Placed)]
    assert len(contracts) == len(set(contracts))  # no option reported for two orders


async def test_a_reply_lost_after_the_sale_is_found_not_bought_again(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter
) -> None:
    (account,) = await iqoption_sim.create_accounts(1)
    order = make_iq_order(broker_account(account))
    assert await iq_adapter.connect(order.account) is None
    await iqoption_sim.set_faults(drop_mid_buy=1)

    outcome = await place_until_valid(iq_adapter, order)

    assert isinstance(outcome, Placed), outcome
    assert outcome.reconciled
    assert_exactly_once([order], [outcome], await iqoption_sim.ledger())


async def test_lost_replies_across_a_fan_out_of_many_accounts(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter
) -> None:
    accounts = await iqoption_sim.create_accounts(8)
    # Two orders per account with the same terms: reconciliation must tell them apart.
    orders = [
        make_iq_order(broker_account(a), signal_id=f"sig{i % 2}", valid_for=20)
        for i, a in enumerate(accounts * 2)
    ]
    for account in accounts:
        assert await iq_adapter.connect(broker_account(account)) is None
    await iqoption_sim.set_faults(drop_mid_buy=6)

    first = await iq_adapter.place_many(orders)
    outcomes = [
        await place_until_valid(iq_adapter, o) if isinstance(r, TransientFailure) else r
        for o, r in zip(orders, first, strict=True)
    ]

    assert_exactly_once(orders, outcomes, await iqoption_sim.ledger())
    assert sum(isinstance(o, Placed) for o in outcomes) >= len(orders) - 6


async def test_connections_dropped_mid_fan_out(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter
) -> None:
    accounts = await iqoption_sim.create_accounts(4)
    orders = [make_iq_order(broker_account(a), valid_for=20) for a in accounts for _ in range(5)]
    for account in accounts:
        assert await iq_adapter.connect(broker_account(account)) is None
    # The next socket to receive 3 messages drops; then another, while orders go out.
    await iqoption_sim.set_faults(drop_after_messages=3)

    async def place(order: OrderRequest) -> PlaceOutcome:
        return await place_until_valid(iq_adapter, order)

    async def dropping() -> None:
        for _ in range(3):
            await asyncio.sleep(0)
            await iqoption_sim.set_faults(drop_after_messages=2)

    outcomes, _ = await asyncio.gather(asyncio.gather(*(place(o) for o in orders)), dropping())

    assert_exactly_once(orders, outcomes, await iqoption_sim.ledger())
    assert all(isinstance(o, Placed | Uncertain) for o in outcomes), outcomes
    assert (await iqoption_sim.stats())["drops"] >= 1


async def test_slow_replies_with_lost_ones_among_them(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter
) -> None:
    accounts = await iqoption_sim.create_accounts(4)
    orders = [make_iq_order(broker_account(a), valid_for=30) for a in accounts for _ in range(3)]
    for account in accounts:
        assert await iq_adapter.connect(broker_account(account)) is None
    await iqoption_sim.set_faults(latency_ms=300, drop_mid_buy=2)

    first = await iq_adapter.place_many(orders)
    outcomes = [
        await place_until_valid(iq_adapter, o) if isinstance(r, TransientFailure) else r
        for o, r in zip(orders, first, strict=True)
    ]

    assert_exactly_once(orders, outcomes, await iqoption_sim.ledger())
    assert all(isinstance(o, Placed) for o in outcomes), outcomes
    assert sum(o.reconciled for o in outcomes if isinstance(o, Placed)) >= 1


async def test_replies_slower_than_the_adapter_waits_are_never_retried_blindly(
    iqoption_sim: IQOptionSim,
) -> None:
    accounts = await iqoption_sim.create_accounts(3)
    adapter = IQOptionAdapter(
        iqoption_sim.login_url,
        iqoption_sim.ws_url,
        reply_timeout=0.2,
        reconcile_timeout=20,
        reconcile_grace=0.1,
    )
    try:
        orders = [make_iq_order(broker_account(a), valid_for=30) for a in accounts]
        for account in accounts:
            assert await adapter.connect(broker_account(account)) is None
        await iqoption_sim.set_faults(latency_ms=600)

        outcomes = await adapter.place_many(orders)
        await iqoption_sim.set_faults(latency_ms=0)
        # Looked up once the broker answers promptly: the broker agrees with each outcome.
        found = [await adapter.reconcile(o) for o in orders]
    finally:
        await adapter.close()

    # A timed-out buy is found, or reported unknown: never bought a second time.
    assert all(isinstance(o, Placed | Uncertain) for o in outcomes), outcomes
    assert_exactly_once(orders, outcomes, await iqoption_sim.ledger())
    for outcome, result in zip(outcomes, found, strict=True):
        assert isinstance(result, Found) == isinstance(outcome, Placed)


async def test_rejected_orders_buy_nothing_beside_placed_ones(
    iqoption_sim: IQOptionSim, iq_adapter: IQOptionAdapter
) -> None:
    (rich,) = await iqoption_sim.create_accounts(1, balance="100")
    (poor,) = await iqoption_sim.create_accounts(1, balance="1")
    orders = [
        make_iq_order(broker_account(rich), stake="5"),
        make_iq_order(broker_account(poor), stake="5"),
        make_iq_order(broker_account(rich), stake="0.10"),
        make_iq_order(broker_account(rich), stake="5"),
    ]

    outcomes = await iq_adapter.place_many(orders)

    assert [type(o) for o in outcomes] == [Placed, Rejected, Rejected, Placed]
    assert_exactly_once(orders, outcomes, await iqoption_sim.ledger())
