"""``TradeOut``: one subscriber's trade as the API and the WebSocket show it.

One shape for every reader (the orders list, its CSV, the live push), so a pushed trade
merges field by field over a listed one. Money is ``Decimal`` (encoded as a string by the
encoders that carry it), times are epoch seconds, and unknown is null. A settled trade keeps
state "placed" and carries ``outcome``, ``profit`` and ``settled_at``: settlement is the
result of a placement, not a state of its own.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from apps.core.messages import Execution, ExecutionState


class TradeOut(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    signal_id: str
    channel_id: str
    subscription_id: str
    # "deriv" | "iqoption"; empty for an order recorded before the ledger kept it.
    broker_kind: str = ""
    state: str  # pending | placed | rejected | expired | failed | unknown
    reason: str | None = None
    asset: str | None = None
    direction: str | None = None  # the direction placed, after a reverse copy
    expiry_seconds: int | None = None
    expiry_at: float | None = None
    stake: Decimal | None = None
    currency: str | None = None
    contract_id: str | None = None
    buy_price: Decimal | None = None
    payout: Decimal | None = None
    entry_spot: Decimal | None = None
    exit_spot: Decimal | None = None
    outcome: str | None = None  # won | lost; null while open or never placed
    profit: Decimal | None = None
    latency_ms: float | None = None  # signal accepted → placed: the copy delay
    signal_created_at: float | None = None
    at: float | None = None  # when ``state`` was reached
    settled_at: float | None = None


def trade_from_execution(execution: Execution) -> TradeOut:
    """The trade as one execution tells it. A settled execution does not repeat when the
    order was placed (``at`` and ``latency_ms`` are null): readers merge it over the
    placement by ``order_id``, non-null fields winning."""
    settled = execution.state is ExecutionState.SETTLED
    return TradeOut(
        order_id=execution.order_id,
        signal_id=execution.signal_id,
        channel_id=execution.channel_id,
        subscription_id=execution.subscription_id,
        broker_kind=execution.broker_kind,
        state=ExecutionState.PLACED.value if settled else execution.state.value,
        reason=execution.reason,
        asset=execution.asset or None,
        direction=None if execution.direction is None else execution.direction.value,
        expiry_seconds=execution.expiry_seconds,
        expiry_at=execution.expiry_at,
        stake=execution.stake,
        currency=execution.currency,
        contract_id=execution.contract_id,
        buy_price=execution.buy_price,
        payout=execution.payout,
        entry_spot=execution.entry_spot,
        exit_spot=execution.exit_spot,
        outcome=None if execution.outcome is None else execution.outcome.value,
        profit=execution.profit,
        latency_ms=None if settled else execution.latency_ms,
        signal_created_at=execution.signal_created_at,
        at=None if settled else execution.at,
        settled_at=execution.at if settled else None,
    )
