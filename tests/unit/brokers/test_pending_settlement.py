"""Pending settlements written by an earlier version (with the whole order) still read."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from apps.brokers.markers import PendingSettlement, pack, unpack_pending
from apps.core.messages import Direction, Execution, ExecutionState, Order


def _placed() -> Execution:
    return Execution(
        order_id="sig.sub",
        signal_id="sig",
        channel_id="chan",
        subscription_id="sub",
        user_id="user",
        state=ExecutionState.PLACED,
        at=1_000.0,
        contract_id="250000001",
    )


def test_an_entry_with_the_whole_order_is_still_understood() -> None:
    order = Order(
        order_id="sig.sub",
        signal_id="sig",
        channel_id="chan",
        subscription_id="sub",
        user_id="user",
        broker_kind="deriv",
        broker_account_id="ba-1",
        asset="R_100",
        direction=Direction.CALL,
        expiry_seconds=60,
        stake=Decimal("1"),
        currency="USD",
        signal_created_at=999.0,
        valid_until=1_005.0,
    )
    old = msgspec.msgpack.encode(
        {"order": order, "contract_id": "250000001", "owner": "w1", "placed": _placed()}
    )

    entry = unpack_pending(old)

    assert entry.account_id == "ba-1"
    assert entry.due == 1_060.0


def test_a_current_entry_names_its_account_and_due_time() -> None:
    entry = PendingSettlement(
        contract_id="250000001",
        owner="w1",
        placed=_placed(),
        broker_account_id="ba-2",
        expires_at=1_015.0,
    )

    again = unpack_pending(pack(entry))

    assert (again.account_id, again.due, again.order) == ("ba-2", 1_015.0, None)
