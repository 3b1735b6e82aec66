"""Redeliveries and lost workers never buy twice: the marker decides, not the ack."""

from __future__ import annotations

import asyncio
import time

from apps.brokers.markers import Marker, MarkerStatus
from apps.brokers.orders import request_for
from apps.brokers.reporting import execution_of
from apps.core.ids import new_id
from apps.core.messages import ExecutionState
from tests.fixtures.copier_harness import Copier
from tests.fixtures.waiting import wait_for


async def test_redelivered_batch_is_re_reported_and_buys_nothing_new(copier: Copier) -> None:
    accounts = await copier.subscribers(5)
    signal_id = new_id()
    orders = [copier.order(a, signal_id) for a in accounts]

    async with copier.worker():
        await copier.publish(orders, msg_id="first")
        await copier.wait_final(orders)
        first = {o.order_id: copier.final(o) for o in orders}
        # The same batch again, past JetStream's de-duplication (another Nats-Msg-Id).
        await copier.publish(orders, msg_id="again")
        await wait_for(
            lambda: all(len(copier.by_order()[o.order_id]) >= 2 for o in orders),
            timeout=60,
            what="re-reports",
        )

    for order in orders:
        reports = [
            e for e in copier.by_order()[order.order_id] if e.state is not ExecutionState.SETTLED
        ]
        assert reports == [first[order.order_id]] * 2  # the very same execution, twice
    assert await copier.contracts_per_order() == {o.order_id: 1 for o in orders}


async def test_lapsed_inflight_order_whose_contract_exists_is_reconciled_not_rebought(
    copier: Copier,
) -> None:
    [account_id] = await copier.subscribers(1)
    order = copier.order(account_id, new_id())
    # A worker bought it, then died before writing anything more than its in-flight marker.
    dead = copier.adapter()
    account = await copier.store.account_for(account_id)
    assert account is not None
    bought = await dead.place(request_for(order, account))
    await dead.close()
    await copier.write_marker(order, copier.inflight("dead-worker", lease_until=time.time() - 1))

    async with copier.worker():
        await copier.publish([order])
        await copier.wait_final([order])

    reconciled = copier.final(order)
    assert reconciled.state is ExecutionState.PLACED
    assert reconciled.contract_id == bought.contract_id  # type: ignore[union-attr]
    assert await copier.contracts_per_order() == {order.order_id: 1}


async def test_lapsed_inflight_order_without_contract_is_placed_while_valid(
    copier: Copier,
) -> None:
    [account_id] = await copier.subscribers(1)
    order = copier.order(account_id, new_id(), valid_for=10.0)
    await copier.write_marker(order, copier.inflight("dead-worker", lease_until=time.time() - 1))

    async with copier.worker():
        await copier.publish([order])
        await copier.wait_final([order])

    assert copier.final(order).state is ExecutionState.PLACED
    assert await copier.contracts_per_order() == {order.order_id: 1}


async def test_undecidable_reconciliation_reports_unknown_and_never_buys(copier: Copier) -> None:
    [account_id] = await copier.subscribers(1)
    signal_id = new_id()
    # Two contracts with the very terms of our order already sit on the account, neither
    # known to belong to it: which one (if any) is ours cannot be told.
    others = [copier.order(account_id, new_id()) for _ in range(2)]
    order = copier.order(account_id, signal_id)
    elsewhere = copier.adapter()
    account = await copier.store.account_for(account_id)
    assert account is not None
    for other in others:
        await elsewhere.place(request_for(other, account))
    await elsewhere.close()
    await copier.write_marker(order, copier.inflight("dead-worker", lease_until=time.time() - 1))

    async with copier.worker():
        await copier.publish([order])
        await copier.wait_final([order])

    unknown = copier.final(order)
    assert unknown.state is ExecutionState.UNKNOWN
    assert unknown.reason == "2 unclaimed contracts match the order's terms"
    assert len(await copier.sim.ledger()) == 2


async def test_a_live_owner_is_waited_for_not_raced(copier: Copier) -> None:
    """A late redelivery while the first attempt is slow (nats-server #6937)."""
    [account_id] = await copier.subscribers(1)
    order = copier.order(account_id, new_id())
    # A lease that outlasts the test: the wait below must end by the owner's word, not by
    # the lease lapsing however slowly this machine runs.
    await copier.write_marker(order, copier.inflight("slow-worker", lease_until=time.time() + 60))

    async with copier.worker():
        await copier.publish([order])
        await asyncio.sleep(0.8)
        assert copier.final_states().get(order.order_id, set()) == set()  # still waiting
        # The slow worker finishes and records its result.
        result = execution_of(
            order, ExecutionState.PLACED, time.time(), "deriv", contract_id="12345"
        )
        now = time.time()
        await copier.write_marker(
            order,
            Marker(
                status=MarkerStatus.PLACED,
                worker="slow-worker",
                claimed_at=now,
                updated_at=now,
                execution=result,
            ),
        )
        await copier.wait_final([order])

    assert copier.final(order) == result
    assert await copier.sim.ledger() == []
