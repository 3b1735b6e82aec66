"""Subscriptions: subscribe, change risk settings, cancel — MongoDB first, then Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import msgspec
from odmantic import AIOEngine
from odmantic.bson import Decimal128
from redis.asyncio import Redis

from apps.api.auth.guards import Principal
from apps.api.channels.service import get_active, refresh_subscriber_counts
from apps.api.errors import ApiError, BadRequest, Conflict, NotFound
from apps.api.models import BrokerAccount, Subscription, optional_decimal
from apps.api.subscriptions.projection import restart_peak, write_subscription
from apps.api.subscriptions.risk import check_risk
from apps.api.subscriptions.schemas import SubscriptionCreate, SubscriptionUpdate
from apps.core.exposure import paused_for_drawdown
from apps.core.relink import ACTIVE, NEEDS_RELINK, paused_for_relink, relink_pause_reason
from apps.core.topology import Topology
from apps.payments.lifecycle import paused_for_payment

Status = Literal["pending_payment", "active", "past_due", "paused", "expired", "cancelled"]


class PaymentRequired(ApiError):
    status_code = 402
    code = "payment_required"


def subscription_status(subscription: Subscription, now: datetime) -> Status:
    if subscription.status == "cancelled":
        return "cancelled"
    if subscription.status == "pending_payment":
        return "pending_payment"
    expires_at = subscription.expires_at
    if expires_at.tzinfo is None:  # MongoDB gives naive UTC back
        expires_at = expires_at.replace(tzinfo=UTC)
    if subscription.status == "ended" or expires_at <= now:
        return "expired"
    if subscription.paused:
        return "paused"
    # Still copying during the grace period, but the subscriber is told to pay.
    return "past_due" if subscription.payment_status == "past_due" else "active"


async def subscribers_account(db: AIOEngine, subscriber_id: str, account_id: str) -> BrokerAccount:
    account = await db.find_one(BrokerAccount, BrokerAccount.id == account_id)
    if account is None or account.owner_id != subscriber_id:
        # The account must be the subscriber's own, even when an admin makes the change.
        raise BadRequest(
            "no such broker account of yours",
            code="invalid_broker_account",
            details=[{"key": "broker_account_id", "message": "not one of your broker accounts"}],
        )
    if not account.currency:
        raise Conflict(
            "the broker account's currency is unknown: verify it first",
            code="broker_account_unverified",
        )
    return account


def refuse_if_needs_relink(account: BrokerAccount) -> None:
    """No subscription copies onto an account whose credentials the broker refuses: each
    of its orders would fail at the broker."""
    if account.status == NEEDS_RELINK:
        raise Conflict(
            f"{relink_pause_reason(account.relink_reason)}; give it new credentials first",
            code="broker_account_needs_relink",
        )


def settings_of(data: SubscriptionCreate) -> dict[str, Any]:
    """The subscriber's settings of a new subscription, as the model stores them (one
    builder for every way a subscription is made: directly, or through checkout)."""
    return {
        "stake_mode": data.stake_mode,
        "stake": data.stake,
        "max_stake": data.max_stake,
        "max_trades_per_day": data.max_trades_per_day,
        "daily_loss_limit": _decimal128(data.daily_loss_limit),
        "assets": sorted(set(data.assets or [])),
        "paused": data.paused,
        "balance_floor": _decimal128(data.balance_floor),
        "max_drawdown_percent": _decimal128(data.max_drawdown_percent),
        "round_up_to_min_stake": data.round_up_to_min_stake,
        "directions": sorted(set(data.directions or [])),
        "reverse": data.reverse,
    }


_DECIMAL128_FIELDS = {"daily_loss_limit", "balance_floor", "max_drawdown_percent"}


def _decimal128(value: Decimal | None) -> Decimal128 | None:
    return None if value is None else Decimal128(value)


async def subscribe(
    db: AIOEngine,
    redis: Redis,
    topology: Topology,
    principal: Principal,
    channel_id: str,
    data: SubscriptionCreate,
    *,
    payments_required: bool = False,
) -> Subscription:
    channel = await get_active(db, channel_id)
    if channel.owner_id == principal.id:
        raise Conflict("you cannot subscribe to your own channel", code="own_channel")
    if payments_required and channel.price > 0:
        raise PaymentRequired(
            "this channel's plan is paid: subscribe through checkout "
            f"(POST /api/v1/channels/{channel.id}/checkout)"
        )
    account = await subscribers_account(db, principal.id, data.broker_account_id)
    refuse_if_needs_relink(account)
    duplicate = await db.find_one(
        Subscription,
        (Subscription.channel_id == channel.id)
        & (Subscription.broker_account_id == account.id)
        & (Subscription.status == "active"),
    )
    if duplicate is not None:
        raise Conflict("this broker account already copies this channel", code="already_subscribed")
    now = datetime.now(UTC)
    subscription = Subscription(
        channel_id=channel.id,
        subscriber_id=principal.id,
        broker_account_id=account.id,
        **settings_of(data),
        created_at=now,
        # A free plan (or payments off): the plan's period bounds how long trades flow.
        expires_at=now + timedelta(days=channel.period_days),
    )
    subscription = await db.save(subscription)
    await write_subscription(redis, topology, subscription, account)
    await refresh_subscriber_counts(db, [channel.id])
    return subscription


async def list_own(db: AIOEngine, principal: Principal) -> list[Subscription]:
    return list(
        await db.find(
            Subscription, Subscription.subscriber_id == principal.id, sort=Subscription.id
        )
    )


async def get_owned(db: AIOEngine, principal: Principal, subscription_id: str) -> Subscription:
    subscription = await db.find_one(Subscription, Subscription.id == subscription_id)
    if (
        subscription is None
        or subscription.status != "active"
        or not (principal.is_admin or subscription.subscriber_id == principal.id)
    ):
        raise NotFound("no such subscription")
    return subscription


async def update(
    db: AIOEngine,
    redis: Redis,
    topology: Topology,
    principal: Principal,
    subscription_id: str,
    data: SubscriptionUpdate,
) -> Subscription:
    subscription = await get_owned(db, principal, subscription_id)
    changes = {
        name: value
        for name in SubscriptionUpdate.__struct_fields__
        if not isinstance(value := getattr(data, name), msgspec.UnsetType)
    }
    for name in ("assets", "directions"):
        if name in changes:
            changes[name] = sorted(set(changes[name] or []))
    merged = subscription.model_copy(update=changes)
    try:
        check_risk(
            merged.stake_mode,
            merged.stake,
            merged.max_stake,
            optional_decimal(merged.daily_loss_limit),
            balance_floor=optional_decimal(merged.balance_floor),
            max_drawdown_percent=optional_decimal(merged.max_drawdown_percent),
            directions=merged.directions,
        )
    except ValueError as exc:
        raise BadRequest(str(exc), code="validation_failed") from exc
    account = await subscribers_account(db, subscription.subscriber_id, merged.broker_account_id)
    if paused_for_payment(subscription.paused_reason) and changes.get("paused") is False:
        raise Conflict(
            f"{subscription.paused_reason}; it resumes once the payment goes through",
            code="payment_pause",
        )
    resumed_drawdown = (
        changes.get("paused") is False
        and subscription.paused
        and paused_for_drawdown(subscription.paused_reason)
    )
    if "paused" in changes:
        changes["paused_reason"] = ""  # the subscriber's own decision from now on
    elif paused_for_relink(merged.paused_reason) and account.status == ACTIVE:
        changes |= {"paused": False, "paused_reason": ""}  # moved to a working account
    if not changes.get("paused", merged.paused):
        refuse_if_needs_relink(account)
    for name, value in changes.items():
        if name in _DECIMAL128_FIELDS:
            value = _decimal128(value)
        setattr(subscription, name, value)
    subscription = await db.save(subscription)
    if resumed_drawdown:
        # The subscriber chose to copy on from here: the drawdown is measured anew from
        # the balance as it is now, or the router would refuse the next order again.
        await restart_peak(redis, topology, account.id)
    await write_subscription(redis, topology, subscription, account)
    return subscription


async def cancel(
    db: AIOEngine, redis: Redis, topology: Topology, principal: Principal, subscription_id: str
) -> None:
    subscription = await get_owned(db, principal, subscription_id)
    if subscription.payment_status:
        # Stopping here would leave the provider billing it: it ends with its period.
        raise Conflict(
            "a paid subscription ends at the end of its period: cancel it with "
            f"POST /api/v1/subscriptions/{subscription.id}/cancel",
            code="paid_subscription",
        )
    subscription.status = "cancelled"
    subscription.cancelled_at = datetime.now(UTC)
    await db.save(subscription)
    await redis.hdel(topology.routing_key(subscription.channel_id), subscription.id)
    await refresh_subscriber_counts(db, [subscription.channel_id])
