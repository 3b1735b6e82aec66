"""What the provider sends Stripe and how it reads Stripe's events (pure functions)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from apps.payments.lifecycle import (
    CheckoutCompleted,
    InvoicePaid,
    PaymentFailed,
    SubscriptionChanged,
    SubscriptionEnded,
)
from apps.payments.provider import (
    DEFAULT_FAILURE,
    CheckoutRequest,
    checkout_form,
    from_minor,
    parse_event,
    to_minor,
)
from apps.payments.stripe_sim.state import as_list, parse_form


def event(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"id": "evt_1", "type": kind, "data": {"object": obj}}).encode()


def test_the_checkout_is_a_daily_recurring_price_of_the_plans_period() -> None:
    form = checkout_form(
        CheckoutRequest(
            subscription_id="s1",
            channel_id="c1",
            channel_name="Alpha",
            amount=Decimal("9.99"),
            currency="USD",
            period_days=30,
            success_url="https://app/s",
            cancel_url="https://app/c",
            customer_email="a@example.test",
        )
    )
    assert form["mode"] == "subscription"
    assert form["client_reference_id"] == "s1"
    assert form["subscription_data[metadata][subscription_id]"] == "s1"
    assert form["line_items[0][price_data][unit_amount]"] == "999"
    assert form["line_items[0][price_data][currency]"] == "usd"
    assert form["line_items[0][price_data][recurring][interval]"] == "day"
    assert form["line_items[0][price_data][recurring][interval_count]"] == "30"
    # The stand-in reads the bracket notation back as Stripe does.
    parsed = parse_form(list(form.items()))
    (item,) = as_list(parsed["line_items"])
    assert item["price_data"]["recurring"] == {"interval": "day", "interval_count": "30"}


def test_minor_units() -> None:
    assert to_minor(Decimal("9.99"), "USD") == 999
    assert to_minor(Decimal("500"), "JPY") == 500
    assert from_minor(999, "usd") == Decimal("9.99")
    assert from_minor(500, "jpy") == Decimal(500)


def test_checkout_completed_names_both_subscriptions() -> None:
    parsed = parse_event(
        event("checkout.session.completed", {"client_reference_id": "s1", "subscription": "sub_1"})
    )
    assert parsed.subscription_id == "s1"
    assert parsed.change == CheckoutCompleted(provider_subscription_id="sub_1")


def test_a_paid_invoice_pays_its_lines_period() -> None:
    invoice = {
        "id": "in_1",
        "subscription": "sub_1",
        "subscription_details": {"metadata": {"subscription_id": "s1"}},
        "currency": "usd",
        "amount_paid": 999,
        "period_start": 100,
        "period_end": 100,  # the previous period's, for a subscription invoice
        "lines": {"data": [{"period": {"start": 100, "end": 200}}]},
        "status_transitions": {"paid_at": 150},
        "hosted_invoice_url": "https://invoice/in_1",
    }
    parsed = parse_event(event("invoice.paid", invoice))
    assert (parsed.subscription_id, parsed.provider_subscription_id) == ("s1", "sub_1")
    assert parsed.change == InvoicePaid(period_end=200)
    assert parsed.invoice is not None
    assert (parsed.invoice.amount, parsed.invoice.currency) == (Decimal("9.99"), "USD")
    assert (parsed.invoice.period_start, parsed.invoice.paid_at) == (100, 150)


def test_the_newer_invoice_shape_names_the_subscription_under_parent() -> None:
    invoice = {
        "id": "in_1",
        "parent": {
            "subscription_details": {"subscription": "sub_1", "metadata": {"subscription_id": "s1"}}
        },
        "lines": {"data": [{"period": {"start": 100, "end": 200}}]},
    }
    parsed = parse_event(event("invoice.payment_failed", invoice))
    assert (parsed.subscription_id, parsed.provider_subscription_id) == ("s1", "sub_1")
    assert parsed.change == PaymentFailed(reason=DEFAULT_FAILURE)


def test_a_failed_payment_carries_the_charges_reason() -> None:
    invoice = {
        "id": "in_1",
        "subscription": "sub_1",
        "payment_intent": {"last_payment_error": {"message": "Insufficient funds."}},
    }
    assert parse_event(event("invoice.payment_failed", invoice)).change == PaymentFailed(
        reason="Insufficient funds."
    )


def test_subscription_updates_and_deletion() -> None:
    obj = {"id": "sub_1", "cancel_at_period_end": True, "metadata": {"subscription_id": "s1"}}
    updated = parse_event(event("customer.subscription.updated", obj))
    assert updated.change == SubscriptionChanged(cancel_at_period_end=True)
    deleted = parse_event(event("customer.subscription.deleted", obj))
    assert (deleted.subscription_id, deleted.change) == ("s1", SubscriptionEnded())


def test_other_events_are_acknowledged_and_change_nothing() -> None:
    parsed = parse_event(event("customer.created", {"id": "cus_1"}))
    assert parsed.change is None and parsed.invoice is None
