"""The stand-in's objects: checkout sessions, customers, subscriptions, invoices, events.

Shapes follow Stripe's API objects for the fields the copier reads (and a few more, so a
client written against Stripe's documentation finds them). All in memory: the stand-in's
state is a test's or a dev stack's, not a ledger. Time is an argument, so the admin API
can move a subscription to its next period without waiting for it.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from typing import Any

DAY = 86_400
INTERVAL_SECONDS = {"day": DAY, "week": 7 * DAY, "month": 30 * DAY, "year": 365 * DAY}


class StripeError(Exception):
    """A request Stripe would refuse: answered as ``{"error": {"type", "message"}}``."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracket notation (``a[b][0][c]=v``) as nested dicts; list indexes become
    dict keys "0", "1"… (see :func:`as_list`)."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise StripeError(400, f"Invalid parameter: {key}")
            node = child
        node[parts[-1]] = value
    return root


def as_list(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value[k] for k in sorted(value, key=lambda k: int(k) if k.isdigit() else 0)]
    return [] if value is None else [value]


class StripeState:
    """Everything the stand-in knows; ``emit`` is called with each event it creates."""

    def __init__(self, public_url: str, emit: Callable[[dict[str, Any]], None]) -> None:
        self.public_url = public_url.rstrip("/")
        self.emit = emit
        self.sessions: dict[str, dict[str, Any]] = {}
        self.customers: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        # Per subscription: the admin's switch that makes its payments fail, and why.
        self.failing: dict[str, str] = {}
        self._numbers = itertools.count(1)

    def _event(self, kind: str, obj: dict[str, Any], now: float) -> None:
        self.emit(
            {
                "id": new_id("evt"),
                "object": "event",
                "api_version": "2024-06-20",
                "created": int(now),
                "type": kind,
                "livemode": False,
                "data": {"object": dict(obj)},
            }
        )

    # -- Checkout -------------------------------------------------------------------------

    def create_session(self, form: dict[str, Any], now: float) -> dict[str, Any]:
        if form.get("mode") != "subscription":
            raise StripeError(400, "this stand-in supports mode=subscription only")
        for name in ("success_url", "cancel_url"):
            if not form.get(name):
                raise StripeError(400, f"Missing required param: {name}.")
        items = as_list(form.get("line_items"))
        if len(items) != 1:
            raise StripeError(400, "exactly one line item is supported")
        price = items[0].get("price_data") or {}
        recurring = price.get("recurring") or {}
        interval = recurring.get("interval")
        if interval not in INTERVAL_SECONDS:
            raise StripeError(400, "Invalid line_items[0][price_data][recurring][interval]")
        try:
            unit_amount = int(price["unit_amount"])
            count = int(recurring.get("interval_count") or 1)
            quantity = int(items[0].get("quantity") or 1)
        except (KeyError, ValueError):
            raise StripeError(400, "Invalid integer in line_items[0]") from None
        if unit_amount < 0 or count < 1 or quantity < 1:
            raise StripeError(400, "amounts and counts must be positive")
        session_id = new_id("cs_test")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "subscription",
            "status": "open",
            "payment_status": "unpaid",
            "url": f"{self.public_url}/c/pay/{session_id}",
            "success_url": form["success_url"],
            "cancel_url": form["cancel_url"],
            "client_reference_id": form.get("client_reference_id"),
            "customer_email": form.get("customer_email"),
            "customer": None,
            "subscription": None,
            "metadata": form.get("metadata") or {},
            "currency": str(price.get("currency") or "usd").lower(),
            "amount_total": unit_amount * quantity,
            "created": int(now),
            "expires_at": int(now) + DAY,
            # Kept for the subscription the session creates; not part of Stripe's object.
            "_product": str((price.get("product_data") or {}).get("name") or "Subscription"),
            "_period": INTERVAL_SECONDS[interval] * count,
            "_recurring": {"interval": interval, "interval_count": count},
            "_subscription_metadata": (form.get("subscription_data") or {}).get("metadata") or {},
        }
        self.sessions[session_id] = session
        return public(session)

    def session(self, session_id: str) -> dict[str, Any]:
        session = self.sessions.get(session_id)
        if session is None:
            raise StripeError(404, f"No such checkout.session: '{session_id}'")
        return session

    def pay_session(self, session_id: str, now: float) -> str:
        """The customer paid on the hosted page: customer, subscription, first invoice,
        and the events Stripe sends. Returns the URL the browser goes to next."""
        session = self.session(session_id)
        if session["status"] == "open":
            customer = {
                "id": new_id("cus"),
                "object": "customer",
                "email": session["customer_email"],
            }
            self.customers[customer["id"]] = customer
            sub_id = new_id("sub")
            subscription = {
                "id": sub_id,
                "object": "subscription",
                "customer": customer["id"],
                "status": "active",
                "cancel_at_period_end": False,
                "canceled_at": None,
                "current_period_start": int(now),
                "current_period_end": int(now + session["_period"]),
                "metadata": dict(session["_subscription_metadata"]),
                "items": {
                    "object": "list",
                    "data": [
                        {
                            "price": {
                                "currency": session["currency"],
                                "unit_amount": session["amount_total"],
                                "recurring": session["_recurring"],
                                "product_name": session["_product"],
                            }
                        }
                    ],
                },
                "latest_invoice": None,
                "_period": session["_period"],
            }
            self.subscriptions[sub_id] = subscription
            invoice = self._invoice(subscription, int(now), int(now + session["_period"]), now)
            invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0)
            invoice["status_transitions"]["paid_at"] = int(now)
            session.update(
                status="complete",
                payment_status="paid",
                customer=customer["id"],
                subscription=sub_id,
            )
            self._event("checkout.session.completed", public(session), now)
            self._event("invoice.paid", public(invoice), now)
        return str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session_id)

    def abandon_session(self, session_id: str) -> str:
        session = self.session(session_id)
        return str(session["cancel_url"])

    # -- Subscriptions and invoices --------------------------------------------------------

    def subscription(self, sub_id: str) -> dict[str, Any]:
        subscription = self.subscriptions.get(sub_id)
        if subscription is None:
            raise StripeError(404, f"No such subscription: '{sub_id}'")
        return subscription

    def update_subscription(self, sub_id: str, form: dict[str, Any], now: float) -> dict[str, Any]:
        subscription = self.subscription(sub_id)
        if subscription["status"] == "canceled":
            raise StripeError(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        if "cancel_at_period_end" in form:
            flag = str(form["cancel_at_period_end"]).lower() == "true"
            subscription["cancel_at_period_end"] = flag
            subscription["canceled_at"] = int(now) if flag else None
            self._event("customer.subscription.updated", public(subscription), now)
        return public(subscription)

    def cancel_subscription(self, sub_id: str, now: float) -> dict[str, Any]:
        subscription = self.subscription(sub_id)
        if subscription["status"] != "canceled":
            subscription.update(status="canceled", canceled_at=int(now), ended_at=int(now))
            self._event("customer.subscription.deleted", public(subscription), now)
        return public(subscription)

    def invoice(self, invoice_id: str) -> dict[str, Any]:
        invoice = self.invoices.get(invoice_id)
        if invoice is None:
            raise StripeError(404, f"No such invoice: '{invoice_id}'")
        return invoice

    def _invoice(
        self, subscription: dict[str, Any], start: int, end: int, now: float
    ) -> dict[str, Any]:
        price = subscription["items"]["data"][0]["price"]
        invoice_id = new_id("in")
        invoice = {
            "id": invoice_id,
            "object": "invoice",
            "number": f"SIM-{next(self._numbers):04d}",
            "customer": subscription["customer"],
            "subscription": subscription["id"],
            "subscription_details": {"metadata": dict(subscription["metadata"])},
            "status": "open",
            "currency": price["currency"],
            "amount_due": price["unit_amount"],
            "amount_paid": 0,
            "amount_remaining": price["unit_amount"],
            "attempt_count": 1,
            "created": int(now),
            "period_start": int(subscription["current_period_start"]),
            "period_end": int(subscription["current_period_start"]),
            "hosted_invoice_url": f"{self.public_url}/i/{invoice_id}",
            "status_transitions": {"paid_at": None},
            "lines": {
                "object": "list",
                "data": [
                    {
                        "object": "line_item",
                        "amount": price["unit_amount"],
                        "currency": price["currency"],
                        "description": price["product_name"],
                        "period": {"start": start, "end": end},
                    }
                ],
            },
        }
        self.invoices[invoice_id] = invoice
        subscription["latest_invoice"] = invoice_id
        return invoice

    def set_failing(self, sub_id: str, fail: bool, reason: str) -> None:
        self.subscription(sub_id)
        if fail:
            self.failing[sub_id] = reason or "Your card was declined."
        else:
            self.failing.pop(sub_id, None)

    def advance(self, sub_id: str, now: float) -> dict[str, Any]:
        """Move to the subscription's next billing moment: retry its unpaid invoice, or
        end it (cancel at period end), or bill the next period."""
        subscription = self.subscription(sub_id)
        if subscription["status"] == "canceled":
            raise StripeError(400, "the subscription is canceled")
        latest = self.invoices.get(subscription["latest_invoice"] or "")
        if latest is not None and latest["status"] == "open":
            latest["attempt_count"] += 1
            return self._attempt(subscription, latest, now)
        if subscription["cancel_at_period_end"]:
            return self.cancel_subscription(sub_id, now)
        start = int(subscription["current_period_end"])
        invoice = self._invoice(subscription, start, start + int(subscription["_period"]), now)
        return self._attempt(subscription, invoice, now)

    def _attempt(
        self, subscription: dict[str, Any], invoice: dict[str, Any], now: float
    ) -> dict[str, Any]:
        reason = self.failing.get(subscription["id"])
        if reason is not None:
            subscription["status"] = "past_due"
            failed = public(invoice)
            # The failed charge's reason, as the invoice's PaymentIntent would carry it.
            failed["payment_intent"] = {
                "id": new_id("pi"),
                "object": "payment_intent",
                "status": "requires_payment_method",
                "last_payment_error": {
                    "type": "card_error",
                    "code": "card_declined",
                    "message": reason,
                },
            }
            self._event("invoice.payment_failed", failed, now)
            return failed
        period = invoice["lines"]["data"][0]["period"]
        invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0)
        invoice["status_transitions"]["paid_at"] = int(now)
        subscription.update(
            status="active",
            current_period_start=period["start"],
            current_period_end=period["end"],
        )
        self._event("invoice.paid", public(invoice), now)
        self._event("customer.subscription.updated", public(subscription), now)
        return public(invoice)


def public(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as the API answers it: without the stand-in's own bookkeeping keys."""
    return {k: v for k, v in obj.items() if not k.startswith("_")}
