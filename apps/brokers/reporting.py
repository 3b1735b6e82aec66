"""Executions out of a broker worker: one ExecutionBatch per signal, through JetStream.

A publish returns only when JetStream has stored the batch (PubAck), because the ORDERS
message is acked after it: an ack before that could lose the only word on an order.
No ``Nats-Msg-Id``: a re-report of the same order is meant to reach the stream again
(the ledger is idempotent per order and state).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.client import JetStreamContext

from apps.brokers.base import (
    Expired,
    Placed,
    PlaceOutcome,
    Rejected,
    Settlement,
    TransientFailure,
    Uncertain,
)
from apps.core.messages import (
    Execution,
    ExecutionBatch,
    ExecutionState,
    Order,
    Outcome,
    encode,
)
from apps.core.topology import Topology

log = logging.getLogger("brokers.reporting")

# EXECUTIONS caps a message at 1 MB; an execution is ≈ 0.5 KB of JSON.
EXECUTIONS_PER_MESSAGE = 500
PUBLISH_ATTEMPTS = 4


def execution_of(
    order: Order, state: ExecutionState, at: float, broker_kind: str, **fields: object
) -> Execution:
    return Execution(
        order_id=order.order_id,
        signal_id=order.signal_id,
        channel_id=order.channel_id,
        subscription_id=order.subscription_id,
        user_id=order.user_id,
        state=state,
        at=at,
        broker_kind=broker_kind,
        stake=order.stake,
        currency=order.currency,
        asset=order.asset,
        direction=order.direction,
        expiry_seconds=order.expiry_seconds,
        signal_created_at=order.signal_created_at,
        **fields,  # type: ignore[arg-type]
    )


def execution_for_outcome(
    order: Order, outcome: PlaceOutcome, at: float, broker_kind: str
) -> Execution:
    """How a broker's answer is reported (ARCHITECTURE.md: one visible final state)."""
    match outcome:
        case Placed():
            return execution_of(
                order,
                ExecutionState.PLACED,
                at,
                broker_kind,
                contract_id=outcome.contract_id,
                buy_price=outcome.buy_price,
                payout=outcome.payout,
                entry_spot=outcome.entry_spot,
                expiry_at=_expiry_at(order, outcome),
                balance_after=outcome.balance_after,
                # A contract found by reconciliation was bought at an unknown earlier
                # instant; its latency is not measured rather than made up.
                latency_ms=None
                if outcome.reconciled
                else round((at - order.signal_created_at) * 1000, 1),
            )
        case Rejected(code=code, message=message, account_refused=refused):
            return execution_of(
                order,
                ExecutionState.REJECTED,
                at,
                broker_kind,
                reason=f"{code}: {message}",
                account_refused=refused,
            )
        case Expired(last_code=code, last_message=message):
            reason = f"{code}: {message}" if code else message or "signal expired"
            return execution_of(order, ExecutionState.EXPIRED, at, broker_kind, reason=reason)
        case Uncertain(message=message):
            return execution_of(order, ExecutionState.UNKNOWN, at, broker_kind, reason=message)
        case TransientFailure(code=code, message=message):
            # Only reached when retrying was cut short; nothing was bought.
            return execution_of(
                order, ExecutionState.EXPIRED, at, broker_kind, reason=f"{code}: {message}"
            )
    raise AssertionError(outcome)  # pragma: no cover - the match is exhaustive


def settled_execution(
    placed: Execution, settlement: Settlement, at: float | None = None
) -> Execution:
    return Execution(
        order_id=placed.order_id,
        signal_id=placed.signal_id,
        channel_id=placed.channel_id,
        subscription_id=placed.subscription_id,
        user_id=placed.user_id,
        state=ExecutionState.SETTLED,
        at=time.time() if at is None else at,
        broker_kind=placed.broker_kind,
        stake=placed.stake,
        currency=placed.currency,
        contract_id=placed.contract_id,
        buy_price=settlement.buy_price,
        payout=placed.payout,
        outcome=Outcome(settlement.outcome),
        profit=Decimal(settlement.profit),
        asset=placed.asset,
        direction=placed.direction,
        expiry_seconds=placed.expiry_seconds,
        signal_created_at=placed.signal_created_at,
        expiry_at=placed.expiry_at if settlement.expiry_at is None else settlement.expiry_at,
        # The broker's word at settlement wins; a spot it did not repeat is kept.
        entry_spot=placed.entry_spot if settlement.entry_spot is None else settlement.entry_spot,
        exit_spot=settlement.exit_spot,
        balance_after=settlement.balance_after,
        latency_ms=placed.latency_ms,
    )


def _expiry_at(order: Order, placed: Placed) -> float | None:
    """When the contract ends: the broker's word, else the order's set instant, else its
    duration from the broker's purchase time."""
    if placed.expiry_at is not None:
        return float(placed.expiry_at)
    if order.expiry_at is not None:
        return float(order.expiry_at)
    return float(placed.purchase_time + order.expiry_seconds) if placed.purchase_time else None


class ExecutionPublisher:
    def __init__(self, js: JetStreamContext, topology: Topology, timeout: float = 5.0) -> None:
        self.js = js
        self.topology = topology
        self.timeout = timeout

    async def publish(self, executions: Sequence[Execution]) -> None:
        """Publish ``executions`` grouped per signal; returns once JetStream stored all."""
        by_signal: defaultdict[tuple[str, str], list[Execution]] = defaultdict(list)
        for execution in executions:
            by_signal[(execution.channel_id, execution.signal_id)].append(execution)
        sends = []
        for (channel_id, signal_id), group in by_signal.items():
            for start in range(0, len(group), EXECUTIONS_PER_MESSAGE):
                batch = ExecutionBatch(
                    signal_id=signal_id,
                    channel_id=channel_id,
                    executions=group[start : start + EXECUTIONS_PER_MESSAGE],
                )
                subject = self.topology.execution_subject(channel_id, signal_id)
                sends.append(self._send(subject, encode(batch)))
        await asyncio.gather(*sends)

    async def _send(self, subject: str, payload: bytes) -> None:
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            try:
                await self.js.publish(subject, payload, timeout=self.timeout)
                return
            except (NatsTimeout, NoRespondersError):
                # A leader election or a reconnect; the caller acks nothing until this
                # returns, so giving up only means the orders are redelivered.
                if attempt == PUBLISH_ATTEMPTS:
                    raise
                log.warning("publishing executions to %s failed (attempt %d)", subject, attempt)
                await asyncio.sleep(0.2 * 2**attempt)
