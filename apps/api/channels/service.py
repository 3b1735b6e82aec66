"""Channels: create and edit (owner), delegate to traders, list publicly."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
from odmantic import AIOEngine, query
from redis.asyncio import Redis

from apps.api.auth.guards import Principal, require_channel_manager
from apps.api.channels.listing import ListQuery, Row, record_days, select, window
from apps.api.channels.schemas import (
    ChannelCreate,
    ChannelPage,
    ChannelUpdate,
    ChannelView,
    PerformanceView,
    PlanView,
    ProviderView,
    TrackWindowView,
)
from apps.api.errors import Conflict, Forbidden, NotFound
from apps.api.models import Channel, Subscription, User, optional_decimal
from apps.api.subscriptions.projection import drop_channel
from apps.core.topology import Topology
from apps.core.track_record import day_of

# One document per channel and day ({channel_id, day, count}): the subscribers over time
# a channel's track record shows.
SUBSCRIBERS = "channel_subscribers"

log = logging.getLogger("api.channels")


async def get_active(db: AIOEngine, channel_id: str) -> Channel:
    channel = await db.find_one(Channel, Channel.id == channel_id)
    if channel is None or channel.status != "active":
        raise NotFound("no such channel")
    return channel


async def get_managed(db: AIOEngine, principal: Principal, channel_id: str) -> Channel:
    channel = await get_active(db, channel_id)
    require_channel_manager(principal, channel)
    return channel


async def create(db: AIOEngine, principal: Principal, data: ChannelCreate) -> Channel:
    if not principal.may_own_channels:
        raise Forbidden("only provider accounts may create channels")
    channel = Channel(
        owner_id=principal.id,
        name=data.name.strip(),
        description=data.description,
        price=data.plan.price,
        currency=data.plan.currency,
        period_days=data.plan.period_days,
        created_at=datetime.now(UTC),
    )
    return await db.save(channel)


async def update(
    db: AIOEngine, principal: Principal, channel_id: str, data: ChannelUpdate
) -> Channel:
    channel = await get_managed(db, principal, channel_id)
    if not isinstance(data.name, msgspec.UnsetType):
        channel.name = data.name.strip()
    if not isinstance(data.description, msgspec.UnsetType):
        channel.description = data.description
    if not isinstance(data.plan, msgspec.UnsetType):
        # Applies to new subscriptions; running ones keep the expiry they were given.
        channel.price = data.plan.price
        channel.currency = data.plan.currency
        channel.period_days = data.plan.period_days
    return await db.save(channel)


async def delete(
    db: AIOEngine, redis: Redis, topology: Topology, principal: Principal, channel_id: str
) -> Channel:
    """Soft delete: the channel disappears, its subscriptions end, routing stops at once."""
    channel = await get_managed(db, principal, channel_id)
    channel.status = "deleted"
    channel.subscriber_count = 0
    await db.save(channel)
    await db.get_collection(Subscription).update_many(
        {"channel_id": channel.id, "status": "active"},
        {"$set": {"status": "cancelled", "cancelled_at": datetime.now(UTC)}},
    )
    await drop_channel(redis, topology, channel.id)
    return channel


async def add_delegate(db: AIOEngine, principal: Principal, channel_id: str, email: str) -> Channel:
    channel = await get_managed(db, principal, channel_id)
    user = await db.find_one(User, User.email == email.strip().lower())
    if user is None:
        raise NotFound("no account with this e-mail")
    if user.id == channel.owner_id:
        raise Conflict("the owner cannot be a delegate of their own channel")
    if user.id not in channel.delegates:
        channel.delegates.append(user.id)
        channel = await db.save(channel)
    return channel


async def remove_delegate(
    db: AIOEngine, principal: Principal, channel_id: str, user_id: str
) -> Channel:
    channel = await get_managed(db, principal, channel_id)
    if user_id not in channel.delegates:
        raise NotFound("this user is not a delegate of the channel")
    channel.delegates.remove(user_id)
    return await db.save(channel)


async def users_by_id(db: AIOEngine, ids: Iterable[str]) -> dict[str, User]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    return {u.id: u for u in await db.find(User, query.in_(User.id, wanted))}


async def list_public(db: AIOEngine, q: ListQuery) -> ChannelPage:
    """One page of the active channels, sorted and filtered as ``q`` says.

    Three queries whatever the number of orders: the active channels, the ledger's
    statistics (`channel_stats`, read whole: a collection scan costs the stand-in less
    than an ``$in`` of every id, and both grow with channels only), and the owners of the
    page's channels. Only the page's channels are turned into models.
    """
    raw = await db.get_collection(Channel).find({"status": "active"}).to_list(None)
    stats = {doc["_id"]: doc async for doc in db.database["channel_stats"].find({}, _STATS_FIELDS)}
    by_id = {doc["_id"]: doc for doc in raw}
    rows = [
        Row(
            channel_id=doc["_id"],
            price=optional_decimal(doc.get("price")) or Decimal(0),
            subscriber_count=int(doc.get("subscriber_count", 0)),
            stats=stats.get(doc["_id"], {}),
        )
        for doc in raw
    ]
    page, total = select(rows, q)
    cards = [Channel.model_validate_doc(by_id[r.channel_id]) for r in page]
    owners = await users_by_id(db, (c.owner_id for c in cards))
    return ChannelPage(
        items=[public_view(c, owners.get(c.owner_id), stats.get(c.id)) for c in cards],
        page=q.page,
        page_size=q.page_size,
        total=total,
    )


async def performance_by_id(db: AIOEngine, channel_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The ledger's per-channel statistics (MongoDB `channel_stats`), one query."""
    if not channel_ids:
        return {}
    cursor = db.database["channel_stats"].find({"_id": {"$in": channel_ids}}, _STATS_FIELDS)
    return {doc["_id"]: doc async for doc in cursor}


# What a card shows: the track's daily subscriber series and the like stay in MongoDB.
_STATS_FIELDS = {
    **dict.fromkeys(("signals", "placed", "won", "lost", "pnl"), 1),
    **dict.fromkeys(("track.30d", "track.all", "record_days", "assets", "first_signal_at"), 1),
}


def track_window(stats: dict[str, Any], name: str) -> TrackWindowView | None:
    """A window of the ledger's record as the API shows it; None if absent or unreadable
    (a document the API cannot read shows as no record, never as a failed listing)."""
    raw = window(stats, name)
    if raw is None:
        return None
    try:
        return msgspec.convert(dict(raw), TrackWindowView, strict=False)
    except msgspec.ValidationError:
        log.warning("channel_stats %s: track window %s unreadable", stats.get("_id"), name)
        return None


def public_view(
    channel: Channel, owner: User | None, stats: dict[str, Any] | None = None
) -> ChannelView:
    stats = stats or {}
    # Signals won and lost and the win rate per signal: the ledger's all-time track record
    # (apps.core.track_record), the same numbers as the channel's track-record page.
    record = (stats.get("track") or {}).get("all") or {}
    wins, losses = int(record.get("won", 0)), int(record.get("lost", 0))
    rate = record.get("win_rate")
    win_rate = None if rate is None else Decimal(str(rate)).quantize(Decimal("0.0001"))
    return ChannelView(
        id=channel.id,
        name=channel.name,
        description=channel.description,
        provider=ProviderView(
            id=channel.owner_id, display_name=owner.display_name if owner else "(deleted)"
        ),
        plan=PlanView(
            price=channel.price, currency=channel.currency, period_days=channel.period_days
        ),
        subscriber_count=channel.subscriber_count,
        performance=PerformanceView(
            signals=int(stats.get("signals", 0)),
            orders_placed=int(stats.get("placed", 0)),
            wins=wins,
            losses=losses,
            win_rate=win_rate,
            pnl=Decimal(str(stats.get("pnl", "0"))),
        ),
        created_at=channel.created_at,
        track_30d=track_window(stats, "30d"),
        track_all=track_window(stats, "all"),
        record_days=record_days(stats) or 0,
        assets=[a for a in stats.get("assets") or [] if isinstance(a, str)],
    )


async def refresh_subscriber_counts(db: AIOEngine, channel_ids: Iterable[str]) -> None:
    """Recount rather than $inc: a crash between writes cannot leave the count wrong.
    The day's count joins the channel's subscriber series (the last count of a day stays)."""
    collection = db.get_collection(Channel)
    series = db.database[SUBSCRIBERS]
    for channel_id in set(channel_ids):
        count = await db.count(
            Subscription,
            (Subscription.channel_id == channel_id) & (Subscription.status == "active"),
        )
        await collection.update_one({"_id": channel_id}, {"$set": {"subscriber_count": count}})
        day = day_of(time.time())
        await series.update_one(
            {"_id": f"{channel_id}:{day}"},
            {"$set": {"channel_id": channel_id, "day": day, "count": count}},
            upsert=True,
        )
