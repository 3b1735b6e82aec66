"""What the markers and pending settlements store in Redis: every execution comes back
exactly as it was written, in the compact form and in the forms earlier versions wrote."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from apps.brokers.markers import (
    Marker,
    MarkerStatus,
    PendingSettlement,
    _Result,
    _Terms,
    pack,
    unpack_marker,
    unpack_pending,
)
from apps.core.ids import new_id
from apps.core.messages import Execution, ExecutionState, Order, Outcome
from tests.fixtures.factories import make_order


def _order(signal_id: str = "sig", subscription_id: str = "sub") -> Order:
    return make_order(
        signal_id=signal_id,
        subscription_id=subscription_id,
        expiry_seconds=60,
        created_at=999.0,
        valid_for=6.0,
    )


def _placed(order: Order | None = None) -> Execution:
    o = order or _order()
    return Execution(
        order_id=o.order_id,
        signal_id=o.signal_id,
        channel_id=o.channel_id,
        subscription_id=o.subscription_id,
        user_id=o.user_id,
        state=ExecutionState.PLACED,
        at=1_000.0,
        broker_kind="deriv",
        stake=Decimal("1.50"),
        currency="USD",
        contract_id="250000001",
        buy_price=Decimal("1.50"),
        payout=Decimal("2.93"),
        latency_ms=734.5,
        # The order's terms, as apps.brokers.reporting stamps them on every execution.
        asset=o.asset,
        direction=o.direction,
        expiry_seconds=o.expiry_seconds,
        signal_created_at=o.signal_created_at,
    )


def _entry() -> PendingSettlement:
    return PendingSettlement(
        contract_id="250000001",
        owner="w1",
        placed=_placed(),
        broker_account_id="ba-2",
        expires_at=1_015.0,
    )


def test_an_entry_with_the_whole_order_is_still_understood() -> None:
    order = _order()
    old = msgspec.msgpack.encode(
        {"order": order, "contract_id": "250000001", "owner": "w1", "placed": _placed()}
    )

    entry = unpack_pending(order.order_id, old)

    assert entry.account_id == "ba-1"
    assert entry.due == 1_060.0


def test_a_current_entry_names_its_account_and_due_time() -> None:
    entry = _entry()

    again = unpack_pending("sig.sub", pack(entry))

    assert again == entry
    assert (again.account_id, again.due, again.order) == ("ba-2", 1_015.0, None)


def test_an_entry_of_the_self_contained_form_is_still_understood() -> None:
    entry = _entry()

    assert unpack_pending("sig.sub", msgspec.msgpack.encode(entry)) == entry


@pytest.mark.parametrize(
    "execution",
    [
        _placed(),
        msgspec.structs.replace(
            _placed(),
            state=ExecutionState.REJECTED,
            reason="InsufficientBalance: no money",
            contract_id=None,
            buy_price=None,
            payout=None,
            latency_ms=None,
        ),
        msgspec.structs.replace(
            _placed(), state=ExecutionState.SETTLED, outcome=Outcome.WON, profit=Decimal("-0.5")
        ),
        None,
    ],
    ids=["placed", "rejected", "every-field", "inflight"],
)
def test_a_marker_comes_back_with_its_execution_as_written(execution: Execution | None) -> None:
    marker = Marker(
        status=MarkerStatus.INFLIGHT if execution is None else MarkerStatus.PLACED,
        worker="deriv-1",
        claimed_at=990.5,
        updated_at=1_000.25,
        lease_until=1_010.0 if execution is None else 0.0,
        takeovers=2,
        execution=execution,
    )

    assert unpack_marker(pack(marker), _order()) == marker
    # Written by an earlier version: a map with the whole execution.
    assert unpack_marker(msgspec.msgpack.encode(marker), _order()) == marker


def test_the_stored_forms_are_a_fraction_of_the_self_contained_ones() -> None:
    order = _order(new_id(), new_id())  # real ids: 26 characters, 53 for the order's
    placed = _placed(order)
    marker = Marker(
        status=MarkerStatus.PLACED,
        worker="deriv-1",
        claimed_at=1.0,
        updated_at=2.0,
        execution=placed,
    )
    entry = PendingSettlement(
        contract_id="250000001",
        owner="deriv-1",
        placed=placed,
        broker_account_id=new_id(),
        expires_at=1_015.0,
    )

    assert len(pack(marker)) < 0.3 * len(msgspec.msgpack.encode(marker))
    assert len(pack(entry)) < 0.6 * len(msgspec.msgpack.encode(entry))


def test_every_field_of_an_execution_is_stored_or_comes_from_the_order() -> None:
    # A field added to Execution but not to the stored form would be lost on re-report.
    from_order = {"order_id", "signal_id", "channel_id", "subscription_id", "user_id"}
    stored = set(_Result.__struct_fields__) | set(_Terms.__struct_fields__)
    assert stored == set(Execution.__struct_fields__) - from_order
    assert not set(_Result.__struct_fields__) & set(_Terms.__struct_fields__)


def test_a_marker_in_no_known_form_is_an_error_not_a_guess() -> None:
    with pytest.raises(msgspec.DecodeError):
        unpack_marker(msgspec.msgpack.encode(["m9", "placed"]), _order())
