"""Paid subscriptions: checkout, the provider's webhook, revenue, receipts, cancel at
period end."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from litestar import Request, Router, get, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from odmantic import query

from apps.api.dependencies import (
    CurrentUser,
    Db,
    PathStr,
    Payments,
    RedisClient,
    SettingsDep,
    TopologyDep,
)
from apps.api.errors import BadRequest, Conflict, Forbidden
from apps.api.models import Channel
from apps.api.openapi import errors
from apps.api.payments import service
from apps.api.payments.schemas import (
    ChannelRevenue,
    CheckoutView,
    Receipt,
    RevenuePeriod,
    RevenueView,
    SubscriberCounts,
    WebhookAnswer,
)
from apps.api.subscriptions.routes import subscription_view
from apps.api.subscriptions.schemas import SubscriptionCreate, SubscriptionView
from apps.payments.provider import PaymentProvider
from apps.payments.signature import SignatureError


def _provider(payments: PaymentProvider | None) -> PaymentProvider:
    if payments is None:
        raise Conflict("payments are off here: subscribe directly", code="payments_off")
    return payments


@post(
    "/channels/{channel_id:str}/checkout",
    status_code=HTTP_201_CREATED,
    responses=errors(403, 404, 409, 502),
)
async def checkout(
    channel_id: PathStr,
    data: JSONBody[SubscriptionCreate],
    principal: CurrentUser,
    db: Db,
    payments: Payments,
    settings: SettingsDep,
) -> CheckoutView:
    """Subscribe to a paid plan: a pending subscription and the page where it is paid.
    It copies the channel once the provider confirms the payment."""
    url = await service.start_checkout(
        db, _provider(payments), settings, principal, channel_id, data
    )
    return CheckoutView(checkout_url=url)


# An event carries a whole invoice or subscription object: larger than the API's own
# bodies, well inside this.
WEBHOOK_MAX_BODY = 1024 * 1024


@post(
    "/payments/stripe/webhook",
    status_code=HTTP_200_OK,
    responses=errors(409),
    request_max_body_size=WEBHOOK_MAX_BODY,
)
async def stripe_webhook(
    request: Request[Any, Any, Any],
    db: Db,
    redis: RedisClient,
    topology: TopologyDep,
    payments: Payments,
    settings: SettingsDep,
) -> WebhookAnswer:
    """Stripe's event deliveries, verified by their ``Stripe-Signature`` (400 if forged
    or stale); a redelivered event is acknowledged and changes nothing."""
    provider = _provider(payments)
    payload = await request.body()
    now = time.time()
    try:
        event = provider.parse_webhook(payload, request.headers.get("stripe-signature"), now)
    except SignatureError as exc:
        raise BadRequest(f"bad webhook signature: {exc}", code="bad_signature") from None
    except ValueError as exc:
        raise BadRequest(str(exc), code="bad_event") from None
    applied = await service.handle_webhook(db, redis, topology, event, settings, now)
    return WebhookAnswer(received=True, applied=applied)


@post(
    "/subscriptions/{subscription_id:str}/cancel",
    status_code=HTTP_200_OK,
    responses=errors(404, 409, 502),
)
async def cancel_at_period_end(
    subscription_id: PathStr,
    principal: CurrentUser,
    db: Db,
    redis: RedisClient,
    topology: TopologyDep,
    payments: Payments,
) -> SubscriptionView:
    """Stop renewing: it keeps copying until ``expires_at``, then ends."""
    subscription = await service.cancel_at_period_end(
        db, redis, topology, payments, principal, subscription_id
    )
    return subscription_view(subscription)


@get("/me/revenue", responses=errors(403))
async def my_revenue(principal: CurrentUser, db: Db) -> RevenueView:
    """A provider's paid revenue per channel and month, and its subscribers by state."""
    if not principal.may_own_channels:
        raise Forbidden("only providers have revenue")
    rows = await service.revenue(db, principal, datetime.now(UTC))
    return RevenueView(
        channels=[
            ChannelRevenue(
                channel_id=r["channel_id"],
                name=r["name"],
                currency=r["currency"],
                price=Decimal(r["price"]),
                total=Decimal(r["total"]),
                periods=[
                    RevenuePeriod(
                        period=p["period"], amount=Decimal(p["amount"]), invoices=p["invoices"]
                    )
                    for p in r["periods"]
                ],
                subscribers=SubscriberCounts(**r["subscribers"]),
            )
            for r in rows
        ]
    )


@get("/me/receipts")
async def my_receipts(principal: CurrentUser, db: Db) -> list[Receipt]:
    """The caller's paid invoices, newest first, each with its receipt page."""
    invoices = await service.receipts(db, principal)
    ids = list({i.channel_id for i in invoices})
    names = {c.id: c.name for c in await db.find(Channel, query.in_(Channel.id, ids))}
    return [
        Receipt(
            id=i.id,
            subscription_id=i.subscription_id,
            channel_id=i.channel_id,
            channel_name=names.get(i.channel_id, ""),
            amount=i.amount,
            currency=i.currency,
            period_start=i.period_start,
            period_end=i.period_end,
            paid_at=i.paid_at,
            url=i.url,
        )
        for i in invoices
    ]


payment_router = Router(
    path="/api/v1",
    route_handlers=[checkout, stripe_webhook, cancel_at_period_end, my_revenue, my_receipts],
    tags=["payments"],
)
