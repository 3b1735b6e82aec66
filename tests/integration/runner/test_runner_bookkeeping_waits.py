"""While a burst of placements goes on, the bookkeeping of the orders already at the broker
waits (RunnerConfig.finish_defer): their markers stay in flight until no chunk is waiting
for or at the broker, or until the bound has passed (finish_defer, and a third of a lease
before their leases lapse: those markers are no longer renewed)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from apps.brokers.base import OrderRequest, PlaceOutcome
from apps.brokers.deriv.adapter import DerivAdapter
from apps.brokers.markers import MarkerStatus, unpack_marker
from apps.core.ids import new_id
from apps.core.messages import ExecutionState, Order
from tests.fixtures.copier_harness import Copier
from tests.fixtures.waiting import wait_for


class HeldAdapter(DerivAdapter):
    """The real adapter, except that the orders in ``held`` reach the simulator only once
    ``release`` is set: a chunk that is still at the broker."""

    def __init__(self, *args: Any, held: set[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held = held
        self.release = asyncio.Event()

    async def place(self, order: OrderRequest) -> PlaceOutcome:
        if order.order_id in self.held:
            await self.release.wait()
        return await super().place(order)

    async def place_many(self, orders: Sequence[OrderRequest]) -> list[PlaceOutcome]:
        if any(o.order_id in self.held for o in orders):
            await self.release.wait()
        return await super().place_many(orders)


def hold(copier: Copier, orders: list[Order]) -> HeldAdapter:
    plain = copier.adapter()
    adapter = HeldAdapter(
        plain.url,
        reply_timeout=plain.reply_timeout,
        reconcile_timeout=plain.reconcile_timeout,
        reconcile_grace=plain.reconcile_grace,
        watch_lead=plain.watches.lead,
        held={o.order_id for o in orders},
    )
    copier.adapter = lambda: adapter  # type: ignore[method-assign]
    return adapter


async def status(copier: Copier, order: Order) -> MarkerStatus:
    packed = await copier.redis.get(copier.topology.order_marker_key(order.order_id))
    assert packed is not None, f"no marker for {order.order_id}"
    return unpack_marker(packed, order).status


async def booked(copier: Copier, order: Order) -> bool:
    return (await copier.contracts_per_order())[order.order_id] == 1


async def two_chunks(copier: Copier) -> tuple[Order, Order, HeldAdapter]:
    """Two orders of one signal with other stakes, so other terms: two chunks, the
    second one (``later``) held at the broker until ``adapter.release`` is set."""
    accounts = await copier.subscribers(2)
    signal_id = new_id()
    first = copier.order(accounts[0], signal_id, stake="1.00")
    later = copier.order(accounts[1], signal_id, stake="2.00")
    return first, later, hold(copier, [later])


async def finished_while_the_other_is_held(
    copier: Copier, first: Order, later: Order, adapter: HeldAdapter, *, within: float
) -> None:
    """Publish both; ``first``'s marker must become final within ``within`` seconds while
    ``later`` is still at the broker, which is then let go."""
    await copier.publish([first, later])
    await wait_for(lambda: booked(copier, first), timeout=60, what="the first order booked")

    async def finished() -> bool:
        return await status(copier, first) is MarkerStatus.PLACED

    await wait_for(finished, timeout=within, what="the first order's final marker")
    assert not adapter.release.is_set()  # the other chunk is still at the broker
    adapter.release.set()
    await copier.wait_final([first, later])


async def test_orders_at_the_broker_are_finished_once_the_burst_is_over(copier: Copier) -> None:
    first, later, adapter = await two_chunks(copier)

    # The wait is bounded by the lease too: 20 s after the claim here.
    async with copier.worker(finish_defer=30.0, lease_seconds=30.0):
        await copier.publish([first, later])
        await wait_for(lambda: booked(copier, first), timeout=60, what="the first order booked")
        # Long enough for a final marker to be written.
        await asyncio.sleep(1.0)
        assert await status(copier, first) is MarkerStatus.INFLIGHT
        assert copier.events == []
        adapter.release.set()
        await copier.wait_final([first, later])

    for order in (first, later):
        assert await status(copier, order) is MarkerStatus.PLACED
        assert copier.final(order).state is ExecutionState.PLACED
    assert len(copier.by_order()[first.order_id]) == 1
    assert await copier.contracts_per_order() == {first.order_id: 1, later.order_id: 1}


async def test_the_bookkeeping_waits_for_a_burst_at_most_finish_defer(copier: Copier) -> None:
    first, later, adapter = await two_chunks(copier)

    # Well inside the lease's bound (20 s after the claim), however busy the machine.
    async with copier.worker(finish_defer=0.5, lease_seconds=30.0):
        await finished_while_the_other_is_held(copier, first, later, adapter, within=15)

    assert await copier.contracts_per_order() == {first.order_id: 1, later.order_id: 1}


async def test_the_bookkeeping_waits_for_a_burst_while_the_leases_hold(copier: Copier) -> None:
    """Not renewed once answered, the first order's lease bounds the wait: its marker is
    final a third of a lease before the lease would lapse, not sooner, however long the
    other chunk stays at the broker."""
    first, later, adapter = await two_chunks(copier)
    lease = 6.0  # long enough that a busy machine stays well inside its thirds

    async with copier.worker(finish_defer=30.0, lease_seconds=lease):
        # Well inside finish_defer (30 s), however busy the machine.
        await finished_while_the_other_is_held(copier, first, later, adapter, within=20)

    packed = await copier.redis.get(copier.topology.order_marker_key(first.order_id))
    assert packed is not None
    marker = unpack_marker(packed, first)
    # Due two thirds of a lease after the claim; a third of a lease after the answer would
    # be about half as long.
    waited = marker.updated_at - marker.claimed_at
    assert lease / 2 < waited < lease, f"finished {waited:.2f} s after the claim"
    assert await copier.contracts_per_order() == {first.order_id: 1, later.order_id: 1}
