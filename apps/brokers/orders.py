"""What an order becomes at a broker: the request an adapter places, the chunks one batch
call can take, and the outcomes the runner states without a broker answer. Pure: the
runner does the I/O around them."""

from __future__ import annotations

import heapq
import logging
from collections import defaultdict
from collections.abc import Sequence

from apps.brokers.base import BrokerAccount, OrderRequest, Uncertain
from apps.brokers.credentials import CredentialsUnreadable
from apps.core.assets import Expiry
from apps.core.messages import Order

log = logging.getLogger("brokers.runner")

ACCOUNT_NOT_FOUND = "broker account not found"


def broker_chunks(orders: Sequence[Order], size: int) -> list[list[Order]]:
    """Orders → chunks of at most ``size`` that one batch call can place together: the
    same terms (stake, currency), and no broker account twice (a batch buys once per
    account; a second order of the same account would have to go alone).

    Each chunk takes the next order of the ``size`` accounts with the most orders left,
    which needs the fewest chunks: as many as ``size`` at a time needs, or as many as the
    busiest account has orders, whichever is more.
    """
    by_terms: defaultdict[tuple[object, ...], defaultdict[str, list[Order]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for order in orders:
        by_terms[(order.stake, order.currency)][order.broker_account_id].append(order)
    chunks: list[list[Order]] = []
    for by_account in by_terms.values():
        # (-orders left, tie-break, the account's orders): heapq pops the busiest first.
        heap = [(-len(q), i, q) for i, q in enumerate(by_account.values())]
        heapq.heapify(heap)
        while heap:
            taken = [heapq.heappop(heap) for _ in range(min(size, len(heap)))]
            chunks.append([queue.pop() for _, _, queue in taken])
            for left, i, queue in taken:
                if queue:
                    heapq.heappush(heap, (left + 1, i, queue))
    return chunks


def usable_account(
    order: Order, account: BrokerAccount | CredentialsUnreadable | None
) -> BrokerAccount | str:
    """The order's broker account, or why it cannot be traded on."""
    if isinstance(account, CredentialsUnreadable):
        log.error(
            "credentials of %s cannot be opened: %s",
            order.broker_account_id,
            account,
            extra={"order_id": order.order_id, "broker_account_id": order.broker_account_id},
        )
        return "broker account credentials unreadable"
    return ACCOUNT_NOT_FOUND if account is None else account


def request_for(order: Order, account: BrokerAccount) -> OrderRequest:
    """What the adapter needs: the order plus the subscriber's credentials."""
    return OrderRequest(
        order_id=order.order_id,
        signal_id=order.signal_id,
        channel_id=order.channel_id,
        account=account,
        asset=order.asset,
        direction=order.direction.value,
        expiry=Expiry(amount=order.expiry_seconds),
        expiry_at=order.expiry_at,
        stake=order.stake,
        currency=order.currency,
        valid_until=order.valid_until,
    )


def contract_end(order: Order, placed_at: float) -> float:
    """When the order's contract is due to end (epoch seconds): the broker's set instant
    when the router chose one (IQ Option), else its duration from the placement."""
    return (
        float(order.expiry_at) if order.expiry_at is not None else placed_at + order.expiry_seconds
    )


def abandoned(request: OrderRequest) -> Uncertain:
    return Uncertain(
        order_id=request.order_id,
        message="the broker call was abandoned before it answered; it may have been booked",
    )


class BookingDelay:
    """How long a broker has lately taken from a buy's send to its answer: an upper bound
    of the time to its booking, which comes before the answer. It follows a slow answer
    at once and forgets it over the next ones (each answer keeps a tenth less of it)."""

    def __init__(self) -> None:
        self._seconds = 0.0

    def observe(self, seconds: float) -> None:
        self._seconds = max(seconds, self._seconds * 0.9)

    def seconds(self) -> float:
        return self._seconds


def too_late(valid_until: float, now: float, booking_delay: float) -> bool:
    """Whether a buy sent ``now`` could be booked after its signal's ``valid_until``: such
    a buy is never sent (the order ends ``expired``), so nothing is placed late."""
    return now + booking_delay >= valid_until
