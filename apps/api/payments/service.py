"""Paid subscriptions at the API: checkout, webhook events, the grace sweep, cancel at
period end, revenue and receipts.

Decisions are :mod:`apps.payments.lifecycle`'s pure functions; this module reads the
subscription, applies one, and writes the result with a compare-and-set on
``payment_version`` (retried on a lost race), then the router's record. Guarantees: an
event is acted on at most once (its id is kept after it was applied; the lifecycle is
idempotent, so a redelivery racing the first delivery changes nothing either); a payment
pause reaches the routing record in the same call, so the router refuses orders with the
reason; a paid invoice is stored under the provider's id, once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from odmantic import AIOEngine, query
from odmantic.bson import Decimal128
from pymongo.errors import DuplicateKeyError
from redis.asyncio import Redis

from apps.api.auth.guards import Principal
from apps.api.channels.service import get_active, refresh_subscriber_counts
from apps.api.errors import ApiError, Conflict, NotFound
from apps.api.models import (
    BrokerAccount,
    Channel,
    PaidInvoice,
    ProcessedPaymentEvent,
    Subscription,
    User,
)
from apps.api.subscriptions.projection import write_subscription
from apps.api.subscriptions.schemas import SubscriptionCreate
from apps.api.subscriptions.service import (
    get_owned,
    refuse_if_needs_relink,
    settings_of,
    subscribers_account,
)
from apps.core.settings import Settings
from apps.core.topology import Topology
from apps.payments import lifecycle
from apps.payments.lifecycle import PaymentState, SubscriptionChanged
from apps.payments.provider import CheckoutRequest, PaymentProvider, ProviderError, WebhookEvent

log = logging.getLogger("payments")
# A lost compare-and-set is retried this often; more means something keeps rewriting it.
MAX_CAS_ATTEMPTS = 20


class BadGateway(ApiError):
    status_code = 502
    code = "payment_provider_error"


def _ts(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:  # MongoDB gives naive UTC back
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def state_of(subscription: Subscription) -> PaymentState:
    return PaymentState(
        status=subscription.payment_status or "active",
        expires_at=_ts(subscription.expires_at) or 0.0,
        period_seconds=subscription.period_days * 86_400.0,
        grace_until=_ts(subscription.grace_until),
        failure_reason=subscription.failure_reason,
        cancel_at_period_end=subscription.cancel_at_period_end,
        provider_subscription_id=subscription.provider_subscription_id,
    )


def changes_for(subscription: Subscription, state: PaymentState) -> dict[str, Any]:
    """The subscription's fields that carry ``state`` (pure)."""
    status = {"pending_payment": "pending_payment", "ended": "ended"}.get(state.status, "active")
    fields: dict[str, Any] = {
        "status": status,
        "payment_status": state.status,
        "expires_at": _dt(state.expires_at),
        "grace_until": _dt(state.grace_until),
        "failure_reason": state.failure_reason,
        "cancel_at_period_end": state.cancel_at_period_end,
        "provider_subscription_id": state.provider_subscription_id,
    }
    reason = lifecycle.pause_reason(state)
    if reason:
        fields |= {"paused": True, "paused_reason": reason}
    elif lifecycle.paused_for_payment(subscription.paused_reason):
        # Paid again: the payment pause is lifted; a pause the subscriber chose is theirs.
        fields |= {"paused": False, "paused_reason": ""}
    return fields


async def transition(
    db: AIOEngine,
    redis: Redis,
    topology: Topology,
    subscription_id: str,
    step: Callable[[PaymentState], PaymentState],
) -> Subscription | None:
    """Apply ``step`` to the subscription's payment state and store it; the router's
    record follows. None if there is no such paid subscription."""
    collection = db.get_collection(Subscription)
    for _ in range(MAX_CAS_ATTEMPTS):
        subscription = await db.find_one(Subscription, Subscription.id == subscription_id)
        if subscription is None or not subscription.payment_status:
            return None
        before = state_of(subscription)
        after = step(before)
        if after == before:
            return subscription
        fields = changes_for(subscription, after)
        version = subscription.payment_version
        result = await collection.update_one(
            {"_id": subscription.id, "payment_version": version},
            {"$set": {**fields, "payment_version": version + 1}},
        )
        if result.matched_count == 0:
            continue  # another delivery changed it first: decide again on what it wrote
        for name, value in fields.items():
            setattr(subscription, name, value)
        subscription.payment_version = version + 1
        account = await db.find_one(
            BrokerAccount, BrokerAccount.id == subscription.broker_account_id
        )
        if account is not None:
            await write_subscription(redis, topology, subscription, account)
        if before.status != after.status:
            await refresh_subscriber_counts(db, [subscription.channel_id])
            log.info(
                "subscription %s payment %s -> %s", subscription.id, before.status, after.status
            )
        return subscription
    raise ConflictingWrites(subscription_id)


class ConflictingWrites(RuntimeError):
    """The subscription kept changing under us; the provider retries the delivery."""


def return_urls(settings: Settings, channel_id: str) -> tuple[str, str]:
    base = settings.public_endpoint
    return (
        f"{base}/subscriptions?checkout=success&session_id={{CHECKOUT_SESSION_ID}}",
        f"{base}/channels/{channel_id}?checkout=cancelled",
    )


async def start_checkout(
    db: AIOEngine,
    provider: PaymentProvider,
    settings: Settings,
    principal: Principal,
    channel_id: str,
    data: SubscriptionCreate,
) -> str:
    """A pending subscription of the caller's to a paid plan, and the provider's checkout
    page URL where the caller pays for it; it is routed once the payment is confirmed."""
    channel = await get_active(db, channel_id)
    if channel.owner_id == principal.id:
        raise Conflict("you cannot subscribe to your own channel", code="own_channel")
    if channel.price <= 0:
        raise Conflict("this plan is free: subscribe directly", code="free_plan")
    account = await subscribers_account(db, principal.id, data.broker_account_id)
    refuse_if_needs_relink(account)
    same = (Subscription.channel_id == channel.id) & (Subscription.broker_account_id == account.id)
    if await db.find_one(Subscription, same & (Subscription.status == "active")) is not None:
        raise Conflict("this broker account already copies this channel", code="already_subscribed")
    user = await db.find_one(User, User.id == principal.id)
    if user is None:
        raise NotFound("no such user")
    # An abandoned checkout for the same copy is replaced by this one.
    await db.get_collection(Subscription).update_many(
        {"channel_id": channel.id, "broker_account_id": account.id, "status": "pending_payment"},
        {
            "$set": {
                "status": "cancelled",
                "payment_status": "ended",
                "cancelled_at": datetime.now(UTC),
            }
        },
    )
    now = datetime.now(UTC)
    subscription = await db.save(
        Subscription(
            channel_id=channel.id,
            subscriber_id=principal.id,
            broker_account_id=account.id,
            status="pending_payment",
            payment_status="pending_payment",
            period_days=channel.period_days,
            **settings_of(data),
            created_at=now,
            expires_at=now,  # nothing paid: no access until the payment is confirmed
        )
    )
    success_url, cancel_url = return_urls(settings, channel.id)
    try:
        checkout = await provider.create_checkout(
            CheckoutRequest(
                subscription_id=subscription.id,
                channel_id=channel.id,
                channel_name=channel.name,
                amount=channel.price,
                currency=channel.currency,
                period_days=channel.period_days,
                success_url=success_url,
                cancel_url=cancel_url,
                customer_email=user.email,
            )
        )
    except ProviderError as exc:
        await db.delete(subscription)
        raise BadGateway(exc.message) from None
    subscription.checkout_session_id = checkout.session_id
    await db.save(subscription)
    return checkout.url


async def handle_webhook(
    db: AIOEngine,
    redis: Redis,
    topology: Topology,
    event: WebhookEvent,
    settings: Settings,
    now: float,
) -> bool:
    """Act on one verified event; False if it was acted on before (nothing changes)."""
    if await db.find_one(ProcessedPaymentEvent, ProcessedPaymentEvent.id == event.id) is not None:
        return False
    subscription = await _find(db, event)
    if subscription is not None and event.change is not None:
        change = event.change
        grace = settings.payment_grace_days * 86_400
        subscription = await transition(
            db, redis, topology, subscription.id, lambda s: lifecycle.apply(s, change, now, grace)
        )
    if subscription is not None and event.invoice is not None:
        await _store_invoice(db, subscription, event)
    try:
        await db.get_collection(ProcessedPaymentEvent).insert_one(
            {
                "_id": event.id,
                "type": event.type,
                "subscription_id": subscription.id if subscription else "",
                "received_at": datetime.now(UTC),
            }
        )
    except DuplicateKeyError:
        return False  # a concurrent delivery of the same event got here first
    return True


async def _find(db: AIOEngine, event: WebhookEvent) -> Subscription | None:
    if event.subscription_id:
        found = await db.find_one(Subscription, Subscription.id == event.subscription_id)
        if found is not None:
            return found
    if event.provider_subscription_id:
        return await db.find_one(
            Subscription, Subscription.provider_subscription_id == event.provider_subscription_id
        )
    return None


async def _store_invoice(db: AIOEngine, subscription: Subscription, event: WebhookEvent) -> None:
    invoice = event.invoice
    assert invoice is not None
    channel = await db.find_one(Channel, Channel.id == subscription.channel_id)
    await db.get_collection(PaidInvoice).update_one(
        {"_id": invoice.id},
        {
            "$set": {
                "subscription_id": subscription.id,
                "subscriber_id": subscription.subscriber_id,
                "channel_id": subscription.channel_id,
                "owner_id": channel.owner_id if channel else "",
                "amount": Decimal128(invoice.amount),
                "currency": invoice.currency,
                "period_start": _dt(invoice.period_start),
                "period_end": _dt(invoice.period_end),
                "paid_at": _dt(invoice.paid_at),
                "url": invoice.url,
            }
        },
        upsert=True,
    )


async def sweep(db: AIOEngine, redis: Redis, topology: Topology, now: float) -> int:
    """What time alone does to paid subscriptions at ``now``: a lapsed grace period
    pauses, a period cancelled at its end ends. Returns how many changed."""
    at = datetime.fromtimestamp(now, UTC)
    due = await db.find(
        Subscription,
        query.or_(
            (Subscription.payment_status == "past_due") & (Subscription.grace_until <= at),  # type: ignore[operator]
            (Subscription.cancel_at_period_end == True)  # noqa: E712 - a query, not a test
            & (Subscription.payment_status != "ended")
            & (Subscription.payment_status != "")
            & (Subscription.expires_at <= at),
        ),
    )
    changed = 0
    for subscription in due:
        before = subscription.payment_status
        after = await transition(
            db, redis, topology, subscription.id, lambda s: lifecycle.settle(s, now)
        )
        changed += after is not None and after.payment_status != before
    return changed


async def cancel_at_period_end(
    db: AIOEngine,
    redis: Redis,
    topology: Topology,
    provider: PaymentProvider | None,
    principal: Principal,
    subscription_id: str,
) -> Subscription:
    """Stop renewing: the subscription copies until ``expires_at``, then ends."""
    subscription = await get_owned(db, principal, subscription_id)
    if subscription.cancel_at_period_end:
        return subscription
    if not subscription.payment_status:
        subscription.cancel_at_period_end = True  # a free plan: its period bounds it anyway
        return await db.save(subscription)
    if subscription.provider_subscription_id and provider is not None:
        try:
            await provider.cancel_at_period_end(subscription.provider_subscription_id)
        except ProviderError as exc:
            raise BadGateway(exc.message) from None
    now = time.time()
    change = SubscriptionChanged(cancel_at_period_end=True)
    done = await transition(
        db, redis, topology, subscription.id, lambda s: lifecycle.apply(s, change, now, 0.0)
    )
    return done or subscription


async def run_sweeper(db: AIOEngine, redis: Redis, topology: Topology, interval: float) -> None:
    """Sweep every ``interval`` seconds until cancelled; a failed sweep is retried on the
    next one (every API instance sweeps: the transitions are compare-and-set)."""
    while True:
        try:
            await sweep(db, redis, topology, time.time())
        except Exception:
            log.warning("the payment sweep failed; retrying in %.0f s", interval, exc_info=True)
        await asyncio.sleep(interval)


def _decimal(value: Any) -> Decimal:
    return value.to_decimal() if hasattr(value, "to_decimal") else Decimal(str(value))


async def revenue(db: AIOEngine, principal: Principal, now: datetime) -> list[dict[str, Any]]:
    """Per channel of the caller's: paid revenue per calendar month and the subscribers
    by payment state."""
    channels = await db.find(
        Channel, (Channel.owner_id == principal.id) & (Channel.status == "active"), sort=Channel.id
    )
    ids = [c.id for c in channels]
    periods: dict[str, dict[str, list[Decimal | int]]] = defaultdict(dict)
    async for row in db.get_collection(PaidInvoice).find({"channel_id": {"$in": ids}}):
        paid_at: datetime = row["paid_at"]
        bucket = periods[row["channel_id"]].setdefault(paid_at.strftime("%Y-%m"), [Decimal(0), 0])
        bucket[0] = Decimal(bucket[0]) + _decimal(row["amount"])
        bucket[1] = int(bucket[1]) + 1
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    subscriptions = await db.find(
        Subscription,
        query.in_(Subscription.channel_id, ids) & (Subscription.status != "cancelled"),  # type: ignore[operator]
    )
    for s in subscriptions:
        expires = s.expires_at if s.expires_at.tzinfo else s.expires_at.replace(tzinfo=UTC)
        if s.status == "pending_payment":
            continue
        if s.status == "ended" or expires <= now:
            kind = "expired"
        elif s.payment_status in ("past_due", "paused"):
            kind = s.payment_status
        else:
            kind = "active"
        counts[s.channel_id][kind] += 1
    result = []
    for channel in channels:
        months = periods.get(channel.id, {})
        result.append(
            {
                "channel_id": channel.id,
                "name": channel.name,
                "currency": channel.currency,
                "price": str(channel.price),
                "total": str(sum((Decimal(v[0]) for v in months.values()), Decimal(0))),
                "periods": [
                    {"period": month, "amount": str(v[0]), "invoices": v[1]}
                    for month, v in sorted(months.items(), reverse=True)
                ],
                "subscribers": {
                    kind: counts[channel.id].get(kind, 0)
                    for kind in ("active", "past_due", "paused", "expired")
                },
            }
        )
    return result


async def receipts(db: AIOEngine, principal: Principal) -> list[PaidInvoice]:
    return list(
        await db.find(
            PaidInvoice,
            PaidInvoice.subscriber_id == principal.id,
            sort=query.desc(PaidInvoice.paid_at),
        )
    )
