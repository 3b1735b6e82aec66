"""The payment provider the API talks to, and Stripe behind it over Stripe's HTTP API.

:class:`PaymentProvider` is all the API knows: start a checkout, cancel at the end of the
period, and turn a webhook delivery into a verified, typed event. :class:`StripeProvider`
speaks Stripe's real API (form-encoded requests, ``Authorization: Bearer <secret key>``,
JSON answers, errors as ``{"error": {"type", "message"}}``), so the same code runs against
api.stripe.com and the local stand-in (:mod:`apps.payments.stripe_sim`). The secret key and
the webhook secret never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

import httpx
import msgspec

from apps.payments import signature
from apps.payments.lifecycle import (
    CheckoutCompleted,
    InvoicePaid,
    PaymentEvent,
    PaymentFailed,
    SubscriptionChanged,
    SubscriptionEnded,
)

# Currencies Stripe counts in whole units (no cents); every other one in hundredths.
ZERO_DECIMAL = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)
DEFAULT_FAILURE = "the card was declined"


class ProviderError(Exception):
    """The provider refused or could not be reached; ``message`` is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CheckoutRequest(msgspec.Struct, frozen=True, kw_only=True):
    subscription_id: str  # ours: comes back on every event about this subscription
    channel_id: str
    channel_name: str
    amount: Decimal
    currency: str
    period_days: int
    success_url: str
    cancel_url: str
    customer_email: str


class Checkout(msgspec.Struct, frozen=True, kw_only=True):
    session_id: str
    url: str


class PaidInvoice(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    amount: Decimal
    currency: str
    period_start: float
    period_end: float
    paid_at: float
    url: str  # the hosted invoice (the receipt) page


class WebhookEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One verified delivery: ``change`` is None for event types we do not act on."""

    id: str
    type: str
    subscription_id: str  # ours, "" when the event does not name it
    provider_subscription_id: str
    change: PaymentEvent | None
    invoice: PaidInvoice | None = None


@runtime_checkable
class PaymentProvider(Protocol):
    async def create_checkout(self, request: CheckoutRequest) -> Checkout: ...

    async def cancel_at_period_end(self, provider_subscription_id: str) -> None: ...

    def parse_webhook(self, payload: bytes, header: str | None, now: float) -> WebhookEvent:
        """Verify the delivery's signature and parse it; :class:`signature.SignatureError`
        if it is not genuine, ValueError if it is not an event."""
        ...


def to_minor(amount: Decimal, currency: str) -> int:
    return int(amount if currency.lower() in ZERO_DECIMAL else amount * 100)


def from_minor(amount: int, currency: str) -> Decimal:
    return Decimal(amount) if currency.lower() in ZERO_DECIMAL else Decimal(amount) / 100


def checkout_form(request: CheckoutRequest) -> dict[str, str]:
    """The Checkout Session create parameters: one recurring line item whose interval is
    the plan's period in days, our subscription id on the session and the subscription."""
    item = "line_items[0]"
    return {
        "mode": "subscription",
        "success_url": request.success_url,
        "cancel_url": request.cancel_url,
        "client_reference_id": request.subscription_id,
        "customer_email": request.customer_email,
        "metadata[subscription_id]": request.subscription_id,
        "metadata[channel_id]": request.channel_id,
        "subscription_data[metadata][subscription_id]": request.subscription_id,
        "subscription_data[metadata][channel_id]": request.channel_id,
        f"{item}[quantity]": "1",
        f"{item}[price_data][currency]": request.currency.lower(),
        f"{item}[price_data][unit_amount]": str(to_minor(request.amount, request.currency)),
        f"{item}[price_data][product_data][name]": request.channel_name,
        f"{item}[price_data][recurring][interval]": "day",
        f"{item}[price_data][recurring][interval_count]": str(request.period_days),
    }


def _dig(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _id(value: Any) -> str:
    """A Stripe reference: an id string, or the expanded object carrying it."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _invoice_subscription(invoice: dict[str, Any]) -> tuple[str, str]:
    """(provider subscription id, our subscription id) of an invoice, in the API version's
    shape or the newer ``parent.subscription_details`` one."""
    details = _dig(invoice, "parent", "subscription_details") or {}
    provider_id = _id(invoice.get("subscription") or details.get("subscription"))
    metadata = _dig(invoice, "subscription_details", "metadata") or details.get("metadata") or {}
    return provider_id, str(metadata.get("subscription_id") or "")


def _failure_reason(invoice: dict[str, Any]) -> str:
    for path in (
        ("payment_intent", "last_payment_error", "message"),
        ("last_finalization_error", "message"),
    ):
        reason = _dig(invoice, *path)
        if isinstance(reason, str) and reason:
            return reason
    return DEFAULT_FAILURE


def _paid_invoice(invoice: dict[str, Any]) -> tuple[PaidInvoice, float]:
    currency = str(invoice.get("currency") or "usd")
    lines = _dig(invoice, "lines", "data") or []
    period = (lines[0].get("period") if lines else None) or {}
    # A subscription invoice's own period_start/end are the previous period's; its line's
    # period is the one paid for.
    start = float(period.get("start") or invoice.get("period_start") or 0)
    end = float(period.get("end") or invoice.get("period_end") or 0)
    paid_at = float(_dig(invoice, "status_transitions", "paid_at") or invoice.get("created") or 0)
    record = PaidInvoice(
        id=str(invoice["id"]),
        amount=from_minor(int(invoice.get("amount_paid") or 0), currency),
        currency=currency.upper(),
        period_start=start,
        period_end=end,
        paid_at=paid_at,
        url=str(invoice.get("hosted_invoice_url") or ""),
    )
    return record, end


def parse_event(payload: bytes) -> WebhookEvent:
    """A Stripe event's JSON as a :class:`WebhookEvent` (pure; no signature check)."""
    try:
        event = json.loads(payload)
        event_id, kind, obj = str(event["id"]), str(event["type"]), event["data"]["object"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError("the body is not a Stripe event") from exc
    if not isinstance(obj, dict):
        raise ValueError("the event's data.object is not an object")
    ours = ""
    provider_id = ""
    change: PaymentEvent | None = None
    invoice: PaidInvoice | None = None
    match kind:
        case "checkout.session.completed":
            ours = str(
                obj.get("client_reference_id") or _dig(obj, "metadata", "subscription_id") or ""
            )
            provider_id = _id(obj.get("subscription"))
            change = CheckoutCompleted(provider_subscription_id=provider_id)
        case "invoice.paid":
            provider_id, ours = _invoice_subscription(obj)
            invoice, period_end = _paid_invoice(obj)
            change = InvoicePaid(period_end=period_end)
        case "invoice.payment_failed":
            provider_id, ours = _invoice_subscription(obj)
            change = PaymentFailed(reason=_failure_reason(obj))
        case "customer.subscription.updated":
            provider_id = _id(obj.get("id"))
            ours = str(_dig(obj, "metadata", "subscription_id") or "")
            change = SubscriptionChanged(cancel_at_period_end=bool(obj.get("cancel_at_period_end")))
        case "customer.subscription.deleted":
            provider_id = _id(obj.get("id"))
            ours = str(_dig(obj, "metadata", "subscription_id") or "")
            change = SubscriptionEnded()
    return WebhookEvent(
        id=event_id,
        type=kind,
        subscription_id=ours,
        provider_subscription_id=provider_id,
        change=change,
        invoice=invoice,
    )


class StripeProvider:
    """Stripe's API at ``api_url`` (``https://api.stripe.com`` or the stand-in)."""

    def __init__(
        self,
        api_url: str,
        secret_key: str,
        webhook_secret: str,
        *,
        timeout: float = 10.0,
        tolerance: int = signature.DEFAULT_TOLERANCE_SECONDS,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=api_url.rstrip("/"),
            headers={"Authorization": f"Bearer {secret_key}"},
            timeout=timeout,
        )
        self._webhook_secret = webhook_secret
        self._tolerance = tolerance

    def __repr__(self) -> str:  # the keys stay out of every repr
        return f"StripeProvider({str(self._client.base_url)!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self._client.post(path, data=form)
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"the payment provider could not be reached ({type(exc).__name__})"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400 or not isinstance(body, dict):
            message = _dig(body, "error", "message") or f"HTTP {response.status_code}"
            raise ProviderError(f"the payment provider refused: {message}")
        return body

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        body = await self._post("/v1/checkout/sessions", checkout_form(request))
        try:
            return Checkout(session_id=str(body["id"]), url=str(body["url"]))
        except KeyError:
            raise ProviderError("the payment provider answered without a checkout URL") from None

    async def cancel_at_period_end(self, provider_subscription_id: str) -> None:
        await self._post(
            f"/v1/subscriptions/{provider_subscription_id}", {"cancel_at_period_end": "true"}
        )

    def parse_webhook(self, payload: bytes, header: str | None, now: float) -> WebhookEvent:
        signature.verify(payload, header, self._webhook_secret, now, self._tolerance)
        return parse_event(payload)
