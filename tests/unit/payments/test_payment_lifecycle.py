"""The payment lifecycle's state machine: every transition, with the clock as an argument."""

from __future__ import annotations

import msgspec

from apps.payments.lifecycle import (
    CheckoutCompleted,
    InvoicePaid,
    PaymentFailed,
    PaymentState,
    SubscriptionChanged,
    SubscriptionEnded,
    apply,
    pause_reason,
    paused_for_payment,
    pending,
    settle,
)

DAY = 86_400.0
PERIOD = 30 * DAY
GRACE = 3 * DAY
T0 = 1_800_000_000.0


def active() -> PaymentState:
    return apply(
        pending(T0, PERIOD), CheckoutCompleted(provider_subscription_id="sub_1"), T0, GRACE
    )


def test_pending_has_no_access_until_paid() -> None:
    state = pending(T0, PERIOD)
    assert state.status == "pending_payment"
    assert state.expires_at == T0


def test_checkout_completed_activates_for_one_period() -> None:
    state = active()
    assert state.status == "active"
    assert state.expires_at == T0 + PERIOD
    assert state.provider_subscription_id == "sub_1"


def test_the_first_invoice_before_the_checkout_event_activates_too() -> None:
    state = apply(pending(T0, PERIOD), InvoicePaid(period_end=T0 + PERIOD), T0, GRACE)
    state = apply(state, CheckoutCompleted(provider_subscription_id="sub_1"), T0 + 1, GRACE)
    assert state.status == "active"
    assert state.expires_at == T0 + PERIOD
    assert state.provider_subscription_id == "sub_1"


def test_renewal_extends_expires_at_by_the_period() -> None:
    state = apply(active(), InvoicePaid(period_end=T0 + 2 * PERIOD), T0 + PERIOD, GRACE)
    assert state.status == "active"
    assert state.expires_at == T0 + 2 * PERIOD


def test_an_older_invoice_never_moves_expires_at_back() -> None:
    state = apply(active(), InvoicePaid(period_end=T0 + 2 * PERIOD), T0, GRACE)
    state = apply(state, InvoicePaid(period_end=T0 + PERIOD), T0, GRACE)
    assert state.expires_at == T0 + 2 * PERIOD


def test_a_failed_payment_is_past_due_with_a_grace_deadline() -> None:
    at = T0 + PERIOD
    state = apply(active(), PaymentFailed(reason="Your card was declined."), at, GRACE)
    assert state.status == "past_due"
    assert state.grace_until == at + GRACE
    assert pause_reason(state) == ""  # still copying during the grace period


def test_retries_do_not_extend_the_grace_period() -> None:
    at = T0 + PERIOD
    state = apply(active(), PaymentFailed(reason="declined"), at, GRACE)
    state = apply(state, PaymentFailed(reason="insufficient funds"), at + DAY, GRACE)
    assert state.grace_until == at + GRACE
    assert state.failure_reason == "insufficient funds"


def test_past_due_is_paused_once_the_grace_is_over_with_the_reason() -> None:
    at = T0 + PERIOD
    state = apply(active(), PaymentFailed(reason="Your card was declined."), at, GRACE)
    assert settle(state, at + GRACE - 1).status == "past_due"
    paused = settle(state, at + GRACE)
    assert paused.status == "paused"
    assert pause_reason(paused) == "payment failed: Your card was declined."
    assert paused_for_payment(pause_reason(paused))


def test_paid_again_resumes() -> None:
    at = T0 + PERIOD
    state = settle(apply(active(), PaymentFailed(reason="declined"), at, GRACE), at + GRACE)
    state = apply(state, InvoicePaid(period_end=T0 + 2 * PERIOD), at + GRACE + 1, GRACE)
    assert state.status == "active"
    assert state.grace_until is None
    assert state.failure_reason == ""
    assert state.expires_at == T0 + 2 * PERIOD
    assert pause_reason(state) == ""


def test_cancel_at_period_end_stays_active_until_expiry_then_ends() -> None:
    state = apply(active(), SubscriptionChanged(cancel_at_period_end=True), T0 + DAY, GRACE)
    assert state.status == "active"
    assert state.cancel_at_period_end
    assert settle(state, T0 + PERIOD - 1).status == "active"
    ended = settle(state, T0 + PERIOD)
    assert ended.status == "ended"
    assert ended.expires_at == T0 + PERIOD


def test_an_ended_subscription_never_comes_back() -> None:
    ended = apply(active(), SubscriptionEnded(), T0 + PERIOD, GRACE)
    assert ended.status == "ended"
    assert apply(ended, InvoicePaid(period_end=T0 + 3 * PERIOD), T0 + PERIOD, GRACE) == ended


def test_deleted_early_ends_now() -> None:
    ended = apply(active(), SubscriptionEnded(), T0 + DAY, GRACE)
    assert ended.expires_at == T0 + DAY


def test_a_failed_first_payment_leaves_it_pending() -> None:
    state = apply(pending(T0, PERIOD), PaymentFailed(reason="declined"), T0, GRACE)
    assert state.status == "pending_payment"


def test_every_event_applied_twice_is_applied_once() -> None:
    events = [
        CheckoutCompleted(provider_subscription_id="sub_1"),
        InvoicePaid(period_end=T0 + 2 * PERIOD),
        PaymentFailed(reason="declined"),
        SubscriptionChanged(cancel_at_period_end=True),
        SubscriptionEnded(),
    ]
    for start in (pending(T0, PERIOD), active()):
        for event in events:
            once = apply(start, event, T0 + DAY, GRACE)
            assert apply(once, event, T0 + DAY, GRACE) == once, event


def test_states_are_frozen() -> None:
    state = active()
    assert msgspec.structs.replace(state, status="paused") != state
