"""/api/v1/channels: public listing, owner management, delegates, subscribers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from litestar import Router, delete, get, patch, post
from litestar.params import JSONBody, Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from apps.api.channels import listing, service
from apps.api.channels.schemas import (
    ChannelCreate,
    ChannelPage,
    ChannelUpdate,
    ChannelView,
    DelegateRequest,
    DelegatesView,
    DelegateView,
    MyChannelView,
    ProviderView,
    SubscriberView,
)
from apps.api.channels.track import get_track_record
from apps.api.dependencies import CurrentUser, Db, PathStr, RedisClient, TopologyDep
from apps.api.errors import BadRequest
from apps.api.models import Channel, Subscription
from apps.api.openapi import errors
from apps.api.signals.service import channel_acl_changed
from apps.api.subscriptions.service import subscription_status


async def _view(db: Db, channel: Channel) -> ChannelView:
    owners = await service.users_by_id(db, [channel.owner_id])
    stats = await service.performance_by_id(db, [channel.id])
    return service.public_view(channel, owners.get(channel.owner_id), stats.get(channel.id))


@post("/", status_code=HTTP_201_CREATED, responses=errors(403))
async def create_channel(
    data: JSONBody[ChannelCreate], principal: CurrentUser, db: Db
) -> ChannelView:
    return await _view(db, await service.create(db, principal, data))


@get("/", responses=errors(400))
async def list_channels(
    db: Db,
    sort: Annotated[
        str | None, Parameter(description=f"One of {', '.join(listing.SORTS)}.")
    ] = None,
    order: Annotated[
        str | None, Parameter(description="asc or desc (default: best first for the sort).")
    ] = None,
    asset: Annotated[
        str | None, Parameter(description="Only channels that signalled it in 90 days.")
    ] = None,
    max_price: Annotated[str | None, Parameter(description="Price per period, at most.")] = None,
    min_win_rate: Annotated[
        str | None, Parameter(description="30-day win rate per signal, at least (0..1).")
    ] = None,
    min_record_days: Annotated[
        str | None, Parameter(description="Age of the track record in days, at least.")
    ] = None,
    page: Annotated[str | None, Parameter(description="From 1.")] = None,
    page_size: Annotated[
        str | None, Parameter(description=f"1..{listing.MAX_PAGE_SIZE}, default 20.")
    ] = None,
) -> ChannelPage:
    """The active channels, sorted, filtered and paginated; public. A channel without a
    track record yet comes last in every sort on it."""
    raw = {
        "sort": sort,
        "order": order,
        "asset": asset,
        "max_price": max_price,
        "min_win_rate": min_win_rate,
        "min_record_days": min_record_days,
        "page": page,
        "page_size": page_size,
    }
    match listing.parse_query(raw):
        case str(message):
            raise BadRequest(message)
        case query:
            return await service.list_public(db, query)


@get("/{channel_id:str}", responses=errors(404))
async def get_channel(channel_id: PathStr, db: Db) -> ChannelView:
    return await _view(db, await service.get_active(db, channel_id))


@patch("/{channel_id:str}", responses=errors(403, 404))
async def update_channel(
    channel_id: PathStr, data: JSONBody[ChannelUpdate], principal: CurrentUser, db: Db
) -> ChannelView:
    return await _view(db, await service.update(db, principal, channel_id, data))


@delete("/{channel_id:str}", status_code=HTTP_204_NO_CONTENT, responses=errors(403, 404))
async def delete_channel(
    channel_id: PathStr, principal: CurrentUser, db: Db, redis: RedisClient, topology: TopologyDep
) -> None:
    channel = await service.delete(db, redis, topology, principal, channel_id)
    await channel_acl_changed(redis, topology, channel)


async def _delegates(db: Db, channel: Channel) -> DelegatesView:
    users = await service.users_by_id(db, channel.delegates)
    return DelegatesView(
        channel_id=channel.id,
        delegates=[
            DelegateView(id=u.id, display_name=u.display_name, email=u.email)
            for uid in channel.delegates
            if (u := users.get(uid)) is not None
        ],
    )


@get("/{channel_id:str}/delegates", responses=errors(403, 404))
async def list_delegates(channel_id: PathStr, principal: CurrentUser, db: Db) -> DelegatesView:
    """Who may send signals for the channel besides its owner (owner and admins only)."""
    return await _delegates(db, await service.get_managed(db, principal, channel_id))


@get("/api/v1/me/channels")
async def my_channels(principal: CurrentUser, db: Db) -> list[MyChannelView]:
    """The channels the caller owns or was delegated, with the caller's role in each."""
    channels = await db.find(
        Channel,
        {"$or": [{"owner_id": principal.id}, {"delegates": principal.id}], "status": "active"},
        sort=Channel.id,
    )
    owners = await service.users_by_id(db, (c.owner_id for c in channels))
    stats = await service.performance_by_id(db, [c.id for c in channels])
    return [
        MyChannelView(
            role="owner" if c.owner_id == principal.id else "delegate",
            channel=service.public_view(c, owners.get(c.owner_id), stats.get(c.id)),
        )
        for c in channels
    ]


@post("/{channel_id:str}/delegates", status_code=HTTP_201_CREATED, responses=errors(403, 404, 409))
async def add_delegate(
    channel_id: PathStr,
    data: JSONBody[DelegateRequest],
    principal: CurrentUser,
    db: Db,
    redis: RedisClient,
    topology: TopologyDep,
) -> DelegatesView:
    channel = await service.add_delegate(db, principal, channel_id, data.email)
    await channel_acl_changed(redis, topology, channel)
    return await _delegates(db, channel)


@delete(
    "/{channel_id:str}/delegates/{user_id:str}",
    status_code=HTTP_204_NO_CONTENT,
    responses=errors(403, 404),
)
async def remove_delegate(
    channel_id: PathStr,
    user_id: PathStr,
    principal: CurrentUser,
    db: Db,
    redis: RedisClient,
    topology: TopologyDep,
) -> None:
    channel = await service.remove_delegate(db, principal, channel_id, user_id)
    # Signal intake caches who may signal a channel; a removed delegate loses it now.
    await channel_acl_changed(redis, topology, channel)


@get("/{channel_id:str}/subscribers", responses=errors(403, 404))
async def list_subscribers(
    channel_id: PathStr, principal: CurrentUser, db: Db
) -> list[SubscriberView]:
    channel = await service.get_managed(db, principal, channel_id)
    subscriptions = await db.find(
        Subscription, Subscription.channel_id == channel.id, sort=Subscription.id
    )
    users = await service.users_by_id(db, (s.subscriber_id for s in subscriptions))
    now = datetime.now(UTC)
    return [
        SubscriberView(
            subscription_id=s.id,
            user=ProviderView(
                id=s.subscriber_id,
                display_name=users[s.subscriber_id].display_name
                if s.subscriber_id in users
                else "(deleted)",
            ),
            since=s.created_at,
            expires_at=s.expires_at,
            status=subscription_status(s, now),
        )
        for s in subscriptions
    ]


channel_router = Router(
    path="/api/v1/channels",
    route_handlers=[
        create_channel,
        list_channels,
        get_channel,
        update_channel,
        delete_channel,
        list_delegates,
        add_delegate,
        remove_delegate,
        list_subscribers,
        get_track_record,
    ],
    tags=["channels"],
)
my_channel_router = Router(path="/", route_handlers=[my_channels], tags=["channels"])
