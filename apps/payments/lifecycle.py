"""A paid subscription's payment lifecycle: a pure state machine, the clock an argument.

    pending_payment ──paid──▶ active ──payment failed──▶ past_due ──grace over──▶ paused
                               ▲  │                        │                       │
                               │  └─cancel at period end   └────────paid───────────┘
                               │        (active until expires_at, then ended)
                               └── each paid invoice extends expires_at to its period's end

Guarantees: :func:`apply` and :func:`settle` never move ``expires_at`` backwards except
when the provider ends the subscription; an ended subscription never comes back; applying
the same event twice gives the same state as applying it once (deliveries are also
deduplicated by event id, this is the second line). The API stores the state on the
subscription and derives the router's record from it (:func:`routing_pause`).
"""

from __future__ import annotations

from typing import Literal

import msgspec

PaymentStatus = Literal["pending_payment", "active", "past_due", "paused", "ended"]
# The routing record's pause reason after an unpaid grace period; the router refuses
# orders with it, and a paid invoice lifts it.
PAYMENT_PAUSE_PREFIX = "payment failed"


class PaymentState(msgspec.Struct, frozen=True, kw_only=True):
    status: PaymentStatus
    # Unix seconds: the end of the last paid period (the router refuses orders after it).
    expires_at: float
    period_seconds: float
    # past_due: when the subscription is paused if no payment arrives first.
    grace_until: float | None = None
    # The provider's words for the last failed payment.
    failure_reason: str = ""
    cancel_at_period_end: bool = False
    provider_subscription_id: str = ""


class CheckoutCompleted(msgspec.Struct, frozen=True, kw_only=True):
    provider_subscription_id: str


class InvoicePaid(msgspec.Struct, frozen=True, kw_only=True):
    # Unix seconds: the end of the period the invoice pays for.
    period_end: float


class PaymentFailed(msgspec.Struct, frozen=True, kw_only=True):
    reason: str


class SubscriptionChanged(msgspec.Struct, frozen=True, kw_only=True):
    cancel_at_period_end: bool


class SubscriptionEnded(msgspec.Struct, frozen=True, kw_only=True):
    pass


PaymentEvent = (
    CheckoutCompleted | InvoicePaid | PaymentFailed | SubscriptionChanged | SubscriptionEnded
)


def pending(now: float, period_seconds: float) -> PaymentState:
    """A subscription created at checkout: nothing paid, so no access yet."""
    return PaymentState(status="pending_payment", expires_at=now, period_seconds=period_seconds)


def apply(
    state: PaymentState, event: PaymentEvent, now: float, grace_seconds: float
) -> PaymentState:
    """The state after ``event``, then :func:`settle` at ``now``."""
    if state.status == "ended":
        return state
    match event:
        case CheckoutCompleted(provider_subscription_id=sub_id):
            # Checkout completes only once the first payment succeeded.
            if state.status == "pending_payment":
                state = msgspec.structs.replace(
                    state,
                    status="active",
                    expires_at=max(state.expires_at, now + state.period_seconds),
                )
            state = msgspec.structs.replace(state, provider_subscription_id=sub_id)
        case InvoicePaid(period_end=period_end):
            state = msgspec.structs.replace(
                state,
                status="active",
                expires_at=max(state.expires_at, period_end),
                grace_until=None,
                failure_reason="",
            )
        case PaymentFailed(reason=reason):
            if state.status in ("active", "past_due"):
                # The grace period runs from the first failure: retries do not extend it.
                state = msgspec.structs.replace(
                    state,
                    status="past_due",
                    grace_until=state.grace_until or now + grace_seconds,
                    failure_reason=reason,
                )
            elif state.status == "paused":
                state = msgspec.structs.replace(state, failure_reason=reason)
        case SubscriptionChanged(cancel_at_period_end=cancelling):
            state = msgspec.structs.replace(state, cancel_at_period_end=cancelling)
        case SubscriptionEnded():
            state = msgspec.structs.replace(
                state, status="ended", expires_at=min(state.expires_at, now), grace_until=None
            )
    return settle(state, now)


def settle(state: PaymentState, now: float) -> PaymentState:
    """What time alone does: a lapsed grace period pauses, a cancelled period ends."""
    if state.status == "past_due" and state.grace_until is not None and now >= state.grace_until:
        return msgspec.structs.replace(state, status="paused")
    if state.cancel_at_period_end and state.status != "ended" and now >= state.expires_at:
        return msgspec.structs.replace(state, status="ended", grace_until=None)
    return state


def pause_reason(state: PaymentState) -> str:
    """The routing record's pause reason this state imposes ("" for none)."""
    if state.status != "paused":
        return ""
    return f"{PAYMENT_PAUSE_PREFIX}: {state.failure_reason or 'the payment was declined'}"


def paused_for_payment(reason: str) -> bool:
    return reason.startswith(PAYMENT_PAUSE_PREFIX)
