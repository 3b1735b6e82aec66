"""Routing records + risk rules + broker rules → orders and refusals for one signal. Pure.

Every record yields exactly one order or one refusal: the subscriber's own rules first
(:mod:`apps.router.risk`: pause, expiry, assets, directions, balance floor, drawdown, the
stake), then the rules of the record's broker
(:mod:`apps.router.broker_rules`), whose signal-wide part is decided once per broker kind.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from apps.core.messages import (
    Execution,
    ExecutionState,
    Order,
    OrderBatch,
    Signal,
    order_id_for,
)
from apps.core.routing import BrokerKind, RoutingRecord
from apps.router.broker_rules import BrokerTerms, broker_stake, broker_terms
from apps.router.risk import (
    Balance,
    Refused,
    check_balance_rules,
    check_static_rules,
    placed_direction,
    size_stake,
)


def shard_of(subscription_id: str, shards: int) -> int:
    """Stable partition of a channel's subscriptions: the same id always lands in the
    same shard, whichever router computes it."""
    return 0 if shards == 1 else zlib.crc32(subscription_id.encode()) % shards


@dataclass
class Plan:
    orders: list[Order] = field(default_factory=list)
    refusals: list[Execution] = field(default_factory=list)


def refusal(
    signal: Signal, record: RoutingRecord, state: ExecutionState, reason: str, now: float
) -> Execution:
    return Execution(
        order_id=order_id_for(signal.signal_id, record.subscription_id),
        signal_id=signal.signal_id,
        channel_id=signal.channel_id,
        subscription_id=record.subscription_id,
        user_id=record.subscriber_id,
        broker_kind=record.broker_kind,
        state=state,
        reason=reason,
        at=now,
        asset=signal.asset,
        direction=signal.direction,
        expiry_seconds=signal.expiry_seconds,
        signal_created_at=signal.created_at,
    )


def order_for(
    signal: Signal, record: RoutingRecord, stake: Decimal, terms: BrokerTerms = BrokerTerms()
) -> Order:
    return Order(
        order_id=order_id_for(signal.signal_id, record.subscription_id),
        signal_id=signal.signal_id,
        channel_id=signal.channel_id,
        subscription_id=record.subscription_id,
        user_id=record.subscriber_id,
        broker_kind=record.broker_kind,
        broker_account_id=record.broker_account_id,
        asset=signal.asset,
        direction=placed_direction(record, signal.direction),
        expiry_seconds=signal.expiry_seconds,
        stake=stake,
        currency=record.currency,
        signal_created_at=signal.created_at,
        valid_until=signal.valid_until,
        expiry_at=terms.expiry_at,
    )


def plan_fanout(
    signal: Signal,
    records: Iterable[RoutingRecord],
    balances: Mapping[str, Balance],
    now: float,
    *,
    expiry_tolerance_seconds: int,
    expire_stale: bool = True,
) -> Plan:
    """Apply the stateless rules; every record yields an order or a refusal.

    ``expiry_tolerance_seconds`` is the router's setting, for signals that state none.
    ``expire_stale=False`` routes even a stale signal, for redeliveries: the workers then
    expire each order they have not placed, and re-report those they have.
    """
    plan = Plan()
    terms_of: dict[BrokerKind, BrokerTerms | Refused] = {}
    for record in records:
        if expire_stale and now >= signal.valid_until:
            plan.refusals.append(
                refusal(
                    signal, record, ExecutionState.EXPIRED, "signal expired before routing", now
                )
            )
            continue
        outcome = _order_or_refusal(
            signal, record, balances, now, terms_of, expiry_tolerance_seconds
        )
        if isinstance(outcome, Refused):
            plan.refusals.append(
                refusal(signal, record, ExecutionState.REJECTED, outcome.reason, now)
            )
        else:
            plan.orders.append(outcome)
    return plan


def _order_or_refusal(
    signal: Signal,
    record: RoutingRecord,
    balances: Mapping[str, Balance],
    now: float,
    terms_of: dict[BrokerKind, BrokerTerms | Refused],
    expiry_tolerance_seconds: int,
) -> Order | Refused:
    """The subscriber's rules, then the broker's; ``terms_of`` keeps each broker kind's
    verdict on the signal, so a fan-out decides it once per kind, not once per record."""
    refused = check_static_rules(record, signal, now)
    if refused is not None:
        return refused
    balance = balances.get(record.broker_account_id)
    refused = check_balance_rules(record, balance)
    if refused is not None:
        return refused
    sized = size_stake(record, signal.stake, None if balance is None else balance.amount)
    if isinstance(sized, Refused):
        return sized
    terms = terms_of.get(record.broker_kind)
    if terms is None:
        terms = broker_terms(record.broker_kind, signal, expiry_tolerance_seconds)
        terms_of[record.broker_kind] = terms
    if isinstance(terms, Refused):
        return terms
    within = broker_stake(
        record.broker_kind,
        sized.stake,
        record.currency,
        round_up_to=record.max_stake if record.round_up_to_min_stake else None,
    )
    if isinstance(within, Refused):
        return within
    return order_for(signal, record, within.stake, terms)


def group_orders(
    signal_id: str, orders: Sequence[Order], group_size: int, shard: int, part: int = 0
) -> list[tuple[str, OrderBatch]]:
    """Orders → (Nats-Msg-Id, batch) per broker kind, ``group_size`` orders each.

    Orders are grouped in subscription-id order, so a redelivered signal regroups the
    same orders under the same message ids and JetStream drops the repeats; ``part``
    names the slice of the shard they come from (the router routes a shard in slices).
    """
    by_kind: dict[str, list[Order]] = defaultdict(list)
    for order in sorted(orders, key=lambda o: o.subscription_id):
        by_kind[order.broker_kind].append(order)
    messages: list[tuple[str, OrderBatch]] = []
    for kind, kind_orders in by_kind.items():
        for start in range(0, len(kind_orders), max(group_size, 1)):
            chunk = kind_orders[start : start + max(group_size, 1)]
            msg_id = (
                order_id_for(signal_id, chunk[0].subscription_id)
                if len(chunk) == 1
                else f"{signal_id}.{kind}.{shard}.{part}.{start}"
            )
            messages.append(
                (
                    msg_id,
                    OrderBatch(signal_id=signal_id, broker_kind=kind, shard=shard, orders=chunk),
                )
            )
    return messages
