"""The pure decisions of accounts that need re-linking (apps.core.relink), how a refusal is
reported and routed, and the MongoDB names the ledger writes without the API's models."""

from __future__ import annotations

import time
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from apps.api.models import BrokerAccount, Subscription
from apps.brokers.base import Rejected
from apps.brokers.markers import Marker, MarkerStatus, pack, unpack_marker
from apps.brokers.reporting import execution_for_outcome
from apps.core.messages import Direction, Execution, ExecutionState, Order, Signal
from apps.core.relink import (
    BROKER_ACCOUNTS_COLLECTION,
    SUBSCRIPTIONS_COLLECTION,
    Refusal,
    latest_per_account,
    paused_for_relink,
    paused_record,
    refusals_by_subscription,
    relink_pause_reason,
)
from apps.core.routing import RoutingRecord, pack_record, unpack_record
from apps.router.risk import Refused, check_static_rules

NOW = 1_800_000_000.0


def execution(
    subscription: str, at: float, *, refused: bool = True, reason: str = "r"
) -> Execution:
    return Execution(
        order_id=f"sig.{subscription}.{at}",
        signal_id="sig",
        channel_id="c1",
        subscription_id=subscription,
        user_id="u1",
        state=ExecutionState.REJECTED,
        at=at,
        reason=reason,
        account_refused=refused,
    )


def record(**overrides: object) -> RoutingRecord:
    fields: dict[str, object] = {
        "subscription_id": "s1",
        "channel_id": "c1",
        "subscriber_id": "u1",
        "broker_kind": "deriv",
        "broker_account_id": "ba1",
        "credentials_ref": "ba1",
        "currency": "USD",
        "stake_mode": "fixed",
        "stake": Decimal("5"),
        "max_stake": Decimal("50"),
        "expires_at": int(NOW) + 3600,
    }
    return RoutingRecord(**(fields | overrides))  # type: ignore[arg-type]


SIGNAL = Signal(
    signal_id="sig",
    channel_id="c1",
    sender_id="p1",
    asset="R_100",
    direction=Direction.CALL,
    expiry_seconds=15,
    stake=Decimal(1),
    created_at=NOW,
    valid_until=NOW + 5,
)


def test_a_relink_pause_is_told_apart_from_the_subscribers_own() -> None:
    reason = relink_pause_reason("InvalidToken: The token is invalid.")
    assert reason == "broker account needs re-linking: InvalidToken: The token is invalid."
    assert paused_for_relink(reason)
    assert paused_for_relink(relink_pause_reason(""))
    assert not paused_for_relink("")


def test_the_router_refuses_a_paused_subscription_with_its_reason() -> None:
    reason = relink_pause_reason("InvalidToken: The token is invalid.")
    assert check_static_rules(paused_record(record(), reason), SIGNAL, NOW) == Refused(reason)
    assert check_static_rules(record(paused=True), SIGNAL, NOW) == Refused("subscription paused")
    assert check_static_rules(record(), SIGNAL, NOW) is None


def test_a_record_written_before_the_reason_existed_reads_as_not_paused_for_relink() -> None:
    old = pack_record(record(paused=True))
    assert unpack_record(old).paused_reason == ""


@given(
    st.lists(
        st.tuples(st.sampled_from(["s1", "s2", "s3"]), st.floats(0, 1e6), st.booleans()),
        max_size=40,
    )
)
def test_one_refusal_per_subscription_its_latest(rows: list[tuple[str, float, bool]]) -> None:
    executions = [execution(s, at, refused=r, reason=f"{s}@{at}") for s, at, r in rows]
    found = refusals_by_subscription(executions)
    assert set(found) == {s for s, _, r in rows if r}
    for subscription, refusal in found.items():
        latest = max(at for s, at, r in rows if r and s == subscription)
        assert refusal.at == latest


def test_refusals_are_grouped_per_account_latest_kept() -> None:
    refusals = {"s1": Refusal("old", 1.0), "s2": Refusal("new", 2.0), "s3": Refusal("x", 3.0)}
    by_account = latest_per_account(refusals, {"s1": "a", "s2": "a"})
    assert by_account == {"a": Refusal("new", 2.0)}  # s3's subscription is gone


def test_a_refused_account_is_reported_on_the_execution() -> None:
    order = Order(
        order_id="sig.s1",
        signal_id="sig",
        channel_id="c1",
        subscription_id="s1",
        user_id="u1",
        broker_kind="deriv",
        broker_account_id="ba1",
        asset="R_100",
        direction=Direction.CALL,
        expiry_seconds=15,
        stake=Decimal(1),
        currency="USD",
        signal_created_at=NOW,
        valid_until=NOW + 5,
    )
    refused = Rejected(order_id="sig.s1", code="InvalidToken", message="no", account_refused=True)
    plain = Rejected(order_id="sig.s1", code="MarketIsClosed", message="closed")
    reported = execution_for_outcome(order, refused, time.time(), "deriv")
    assert reported.account_refused
    assert not execution_for_outcome(order, plain, time.time(), "deriv").account_refused
    # A redelivered order is re-reported from its marker: the refusal must survive it.
    marker = Marker(
        status=MarkerStatus.REJECTED, worker="w", claimed_at=1.0, updated_at=2.0, execution=reported
    )
    assert unpack_marker(pack(marker), order).execution == reported


def test_the_ledger_writes_the_collections_and_fields_the_models_read() -> None:
    assert BrokerAccount.model_config["collection"] == BROKER_ACCOUNTS_COLLECTION
    assert Subscription.model_config["collection"] == SUBSCRIPTIONS_COLLECTION
    account_fields = set(BrokerAccount.__odm_fields__)
    assert {"status", "relink_reason", "relink_since", "verified_at"} <= account_fields
    assert {"broker_account_id", "status", "paused", "paused_reason", "channel_id"} <= set(
        Subscription.__odm_fields__
    )
