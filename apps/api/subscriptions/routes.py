"""/api/v1/channels/{id}/subscriptions and /api/v1/subscriptions."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Router, delete, get, patch, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from apps.api.dependencies import (
    CurrentUser,
    Db,
    PathStr,
    RedisClient,
    SettingsDep,
    TopologyDep,
)
from apps.api.models import Subscription, optional_decimal
from apps.api.openapi import errors
from apps.api.subscriptions import service
from apps.api.subscriptions.projection import directions_of
from apps.api.subscriptions.schemas import (
    SubscriptionCreate,
    SubscriptionUpdate,
    SubscriptionView,
)


def subscription_view(subscription: Subscription) -> SubscriptionView:
    return SubscriptionView(
        id=subscription.id,
        channel_id=subscription.channel_id,
        broker_account_id=subscription.broker_account_id,
        stake_mode=subscription.stake_mode,
        stake=subscription.stake,
        max_stake=subscription.max_stake,
        max_trades_per_day=subscription.max_trades_per_day,
        daily_loss_limit=optional_decimal(subscription.daily_loss_limit),
        assets=list(subscription.assets),
        paused=subscription.paused,
        paused_reason=subscription.paused_reason,
        status=service.subscription_status(subscription, datetime.now(UTC)),
        created_at=subscription.created_at,
        expires_at=subscription.expires_at,
        payment_status=subscription.payment_status,
        cancel_at_period_end=subscription.cancel_at_period_end,
        grace_until=subscription.grace_until,
        balance_floor=optional_decimal(subscription.balance_floor),
        max_drawdown_percent=optional_decimal(subscription.max_drawdown_percent),
        round_up_to_min_stake=subscription.round_up_to_min_stake,
        directions=list(directions_of(subscription.directions)),
        reverse=subscription.reverse,
    )


@post(
    "/channels/{channel_id:str}/subscriptions",
    status_code=HTTP_201_CREATED,
    responses=errors(402, 403, 404, 409),
)
async def subscribe(
    channel_id: PathStr,
    data: JSONBody[SubscriptionCreate],
    principal: CurrentUser,
    db: Db,
    redis: RedisClient,
    topology: TopologyDep,
    settings: SettingsDep,
) -> SubscriptionView:
    """Copy a channel. A paid plan is subscribed through checkout instead (402)."""
    subscription = await service.subscribe(
        db,
        redis,
        topology,
        principal,
        channel_id,
        data,
        payments_required=settings.payments == "stripe",
    )
    return subscription_view(subscription)


@get("/subscriptions")
async def list_subscriptions(principal: CurrentUser, db: Db) -> list[SubscriptionView]:
    return [subscription_view(s) for s in await service.list_own(db, principal)]


@patch("/subscriptions/{subscription_id:str}", responses=errors(404, 409))
async def update_subscription(
    subscription_id: PathStr,
    data: JSONBody[SubscriptionUpdate],
    principal: CurrentUser,
    db: Db,
    redis: RedisClient,
    topology: TopologyDep,
) -> SubscriptionView:
    subscription = await service.update(db, redis, topology, principal, subscription_id, data)
    return subscription_view(subscription)


@delete(
    "/subscriptions/{subscription_id:str}",
    status_code=HTTP_204_NO_CONTENT,
    responses=errors(404, 409),
)
async def cancel_subscription(
    subscription_id: PathStr,
    principal: CurrentUser,
    db: Db,
    redis: RedisClient,
    topology: TopologyDep,
) -> None:
    await service.cancel(db, redis, topology, principal, subscription_id)


subscription_router = Router(
    path="/api/v1",
    route_handlers=[subscribe, list_subscriptions, update_subscription, cancel_subscription],
    tags=["subscriptions"],
)
