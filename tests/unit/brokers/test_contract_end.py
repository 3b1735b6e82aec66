"""When a placed order's contract is due to end: what settlement followers wait for."""

from __future__ import annotations

from decimal import Decimal

from apps.brokers.orders import contract_end
from apps.core.messages import Direction, Order


def order(expiry_at: int | None) -> Order:
    return Order(
        order_id="s.1",
        signal_id="s",
        channel_id="c",
        subscription_id="1",
        user_id="u",
        broker_kind="iqoption" if expiry_at else "deriv",
        broker_account_id="a",
        asset="EURUSD",
        direction=Direction.CALL,
        expiry_seconds=120,
        stake=Decimal("1"),
        currency="USD",
        signal_created_at=1_000.0,
        valid_until=1_005.0,
        expiry_at=expiry_at,
    )


def test_a_set_instant_is_the_end_whenever_the_order_was_placed() -> None:
    assert contract_end(order(1_140), placed_at=1_001.5) == 1_140.0


def test_a_duration_runs_from_the_placement() -> None:
    assert contract_end(order(None), placed_at=1_001.5) == 1_121.5
