"""What a worker holds while it works on orders: concurrency slots, the orders whose
in-flight markers it owns, and the keeper that renews those markers' leases.

A lease is what lets another worker take an order over (:mod:`apps.brokers.ownership`):
the keeper renews it while the order is worked on and, when it cannot, stops the broker
call on it before the lease lapses, so no buy of ours is on its way once another worker
may act.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from apps.brokers.base import BrokerAccount
from apps.brokers.markers import Marker, MarkerBook, pack
from apps.core.messages import Order
from apps.core.outage import DEPENDENCY_ERRORS

log = logging.getLogger("brokers.runner")


class Slots:
    """A counting semaphore that takes ``n`` permits at once, first come first served.

    Taking a group's permits one by one could deadlock two groups each holding a part;
    taking them under one lock cannot, since permits are returned without the lock.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._free = size
        self._turn = asyncio.Lock()
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, n: int) -> AsyncIterator[None]:
        n = max(1, min(n, self.size))
        async with self._turn, self._changed:
            await self._changed.wait_for(lambda: self._free >= n)
            self._free -= n
        try:
            yield
        finally:
            async with self._changed:
                self._free += n
                self._changed.notify_all()


@dataclass(slots=True, eq=False)
class Owned:
    """An order whose in-flight marker this worker holds. ``token`` is the marker's exact
    bytes (for compare-and-set); the lease keeper swaps it on every renewal."""

    order: Order
    token: bytes
    marker: Marker
    call: asyncio.Task[Any] | None = None  # the broker call working on it, if any
    lost: bool = False  # someone else changed the marker: stop, never buy
    account: BrokerAccount | None = None  # its credentials, once looked up
    # A renewal sent but not known to be kept (no reply, or too few replicas confirmed
    # it): the primary may hold it and a failover may not, so it is sent again, unchanged,
    # before anything is written over it (the scripts take it whichever the store holds).
    renewal: Marker | None = None


class LeaseKeeper:
    """Renews the leases of every in-flight marker this worker holds.

    A lease is short (``lease_seconds``) so that a crashed worker's orders are taken over
    while their signal may still be valid; a working owner renews it every third of that.
    If renewing fails until a lease would lapse (Redis unreachable, or another worker
    changed the marker), the broker call working on the order is cancelled: after the
    lapse another worker may act on it, and our buy must not still be on its way.
    """

    def __init__(self, markers: MarkerBook, lease_seconds: float, clock: Callable[[], float]):
        self.markers = markers
        self.lease_seconds = lease_seconds
        self.clock = clock
        self._held: dict[str, Owned] = {}
        # Renewals and final writes are compare-and-sets on the same bytes: one at a time.
        self.lock = asyncio.Lock()

    def hold(self, items: Sequence[Owned]) -> None:
        for item in items:
            self._held[item.order.order_id] = item

    def drop(self, items: Sequence[Owned]) -> None:
        for item in items:
            if self._held.get(item.order.order_id) is item:
                del self._held[item.order.order_id]

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                await self.renew()
            except DEPENDENCY_ERRORS as exc:
                log.warning("renewing %d leases: %r", len(self._held), exc)
                self._cancel_lapsing()
            except Exception:
                log.exception("renewing %d leases failed", len(self._held))
                self._cancel_lapsing()

    async def renew(self) -> None:
        async with self.lock:
            items = list(self._held.values())
            if not items:
                return
            now = self.clock()
            # Orders claimed together share one marker object, and share its renewal too.
            fresh: dict[int, Marker] = {}
            renewed = [
                i.renewal
                or fresh.get(id(i.marker))
                or fresh.setdefault(
                    id(i.marker),
                    msgspec.structs.replace(
                        i.marker, lease_until=now + self.lease_seconds, updated_at=now
                    ),
                )
                for i in items
            ]
            await self._renew(items, renewed)

    async def confirm_renewals(self, items: Sequence[Owned]) -> None:
        """Send the renewals of ``items`` not known to be kept again (the caller holds the
        lock): a compare-and-set after them must expect what the store holds."""
        pending = [i for i in items if i.renewal is not None]
        if pending:
            await self._renew(pending, [i.renewal for i in pending if i.renewal is not None])

    async def _renew(self, items: Sequence[Owned], renewed: Sequence[Marker]) -> None:
        try:
            done = await self.markers.finish_many(
                [(i.order.order_id, i.token, m, None) for i, m in zip(items, renewed, strict=True)]
            )
        except BaseException:
            for item, marker in zip(items, renewed, strict=True):
                item.renewal = marker
            raise
        for item, marker, ok in zip(items, renewed, done, strict=True):
            item.renewal = None
            if ok:
                item.token, item.marker = pack(marker), marker
            else:
                log.error(
                    "in-flight marker of %s was taken from us",
                    item.order.order_id,
                    extra={
                        "order_id": item.order.order_id,
                        "broker_account_id": item.order.broker_account_id,
                    },
                )
                item.lost = True
                self.drop([item])
                if item.call is not None:
                    item.call.cancel()

    def cancel_calls(self) -> None:
        """Stop every broker call (the process lease is lapsing: after it, another worker
        may reconcile these orders, and no buy of ours may still be on its way)."""
        for item in list(self._held.values()):
            if item.call is not None and not item.call.done():
                item.call.cancel()

    def _cancel_lapsing(self) -> None:
        # Stop a call a moment before its lease lapses, so it is over when another worker
        # is allowed to look.
        soon = self.clock() + min(1.0, self.lease_seconds / 3)
        for item in list(self._held.values()):
            if item.marker.lease_until <= soon and item.call is not None:
                item.call.cancel()
