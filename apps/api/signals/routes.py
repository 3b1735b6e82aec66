"""Signals over HTTP: send, list a channel's, read one with its live counts."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from litestar import Router, get, post
from litestar.params import JSONBody, Parameter
from litestar.status_codes import HTTP_202_ACCEPTED
from odmantic import AIOEngine, query
from redis.asyncio import Redis

from apps.api.auth.principals import Principal
from apps.api.dependencies import AccessClaims, CurrentUser, Intake, PathStr, Viewer
from apps.api.errors import NotFound
from apps.api.models import Channel, Subscription
from apps.api.openapi import errors
from apps.api.signals.schemas import (
    Counts,
    SentByOut,
    SignalAccepted,
    SignalIn,
    SignalOut,
)
from apps.api.signals.service import SignalIntake
from apps.api.signals.ws import signal_socket
from apps.core.records import SignalRecord
from apps.core.signal_stats import signal_counts_from
from apps.core.topology import Topology


@post(
    "/channels/{channel_id:str}/signals",
    status_code=HTTP_202_ACCEPTED,
    responses=errors(403, 404),
)
async def send_signal(
    channel_id: PathStr, data: JSONBody[SignalIn], claims: AccessClaims, intake: Intake
) -> SignalAccepted:
    """Queue a signal for every subscriber of the channel; answers before the fan-out.

    Takes the verified token rather than a principal: intake reads the caller's facts in
    the same Redis round trip as the channel's ACL."""
    return await intake.accept(
        claims,
        channel_id,
        asset=data.asset,
        direction=data.direction,
        expiry_seconds=data.expiry_seconds,
        stake=data.stake,
        client_id=data.client_id,
        expiry_tolerance_seconds=data.expiry_tolerance_seconds,
    )


async def _counts(
    redis: Redis, topology: Topology, db: AIOEngine, signal_id: str
) -> dict[str, Any]:
    raw = await redis.hgetall(topology.signal_stats_key(signal_id))
    if raw:
        return signal_counts_from(raw)
    # Books older than Redis keeps them: the ledger's copy in MongoDB.
    stored = (
        await db.get_collection(SignalRecord).database["signal_stats"].find_one({"_id": signal_id})
    )
    return stored or signal_counts_from({})


async def _results(db: AIOEngine, signal_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The ledger's per-signal results (outcome, profit at stake) of ``signal_ids``."""
    if not signal_ids:
        return {}
    cursor = db.database["signal_results"].find(
        {"_id": {"$in": signal_ids}}, {"outcome": 1, "profit_at_stake": 1}
    )
    return {doc["_id"]: doc async for doc in cursor}


def _out(
    record: SignalRecord, stats: dict[str, Any], result: dict[str, Any] | None = None
) -> SignalOut:
    result = result or {}
    profit = result.get("profit_at_stake")
    return SignalOut(
        signal_id=record.id,
        channel_id=record.channel_id,
        sender_id=record.sender_id,
        asset=record.asset,
        direction=record.direction,  # type: ignore[arg-type]
        expiry_seconds=record.expiry_seconds,
        stake=record.stake,
        created_at=record.created_at,
        valid_until=record.valid_until,
        client_id=record.client_id,
        counts=Counts(**stats["counts"]),
        done=stats["done"],
        won=stats["won"],
        lost=stats["lost"],
        pnl=Decimal(stats["pnl"]),
        latency_ms=stats["latency_ms"],
        brokers=stats.get("brokers") or {},
        outcome=result.get("outcome"),
        profit_at_stake=None if profit is None else Decimal(profit),
        sent_by=None
        if record.sent_by is None
        else SentByOut(
            id=record.sent_by["id"],
            display_name=record.sent_by["display_name"],
            role=record.sent_by["role"],  # type: ignore[arg-type]
        ),
    )


async def _sees_current(intake: SignalIntake, viewer: Principal | None, channel_id: str) -> bool:
    """Whether ``viewer`` sees the channel's signals before they expire: its owner,
    delegates and admins, and its active subscribers."""
    if viewer is None:
        return False
    if await intake.may_signal(viewer, channel_id):
        return True
    subscription = await intake.db.find_one(
        Subscription,
        (Subscription.channel_id == channel_id)
        & (Subscription.subscriber_id == viewer.id)
        & (Subscription.status == "active")
        & (Subscription.expires_at > datetime.now(UTC)),
    )
    return subscription is not None


async def _history(
    db: AIOEngine, channel_id: str, limit: int, before: str | None, expired_by: float | None
) -> list[SignalRecord]:
    """Up to ``limit`` of the channel's signals before ``before``, newest first; with
    ``expired_by``, only those whose expiry (created_at + expiry_seconds) had passed then."""
    found: list[SignalRecord] = []
    while len(found) < limit:
        conditions = [SignalRecord.channel_id == channel_id]
        if before:
            conditions.append(SignalRecord.id < before)
        if expired_by is not None:
            conditions.append(SignalRecord.created_at <= expired_by)
        batch = await db.find(
            SignalRecord,
            query.and_(*conditions) if len(conditions) > 1 else conditions[0],
            sort=query.desc(SignalRecord.id),
            limit=limit,
        )
        found += [
            r for r in batch if expired_by is None or r.created_at + r.expiry_seconds <= expired_by
        ]
        # Skipped signals are the current ones: at most a day's (the longest expiry).
        if expired_by is None or len(batch) < limit:
            break
        before = batch[-1].id
    return found[:limit]


@get("/channels/{channel_id:str}/signals", responses=errors(401, 404))
async def list_signals(
    channel_id: PathStr,
    viewer: Viewer,
    intake: Intake,
    limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    before: Annotated[str | None, Parameter(max_length=64)] = None,
) -> list[SignalOut]:
    """The channel's signals, newest first, with their counts and results. Public once
    expired (created_at + expiry_seconds passed); the current ones only to the owner, the
    delegates, admins and the channel's active subscribers. A token, when sent, must be
    valid."""
    channel = await intake.db.find_one(Channel, Channel.id == channel_id)
    if channel is None or channel.status != "active":
        raise NotFound("no such channel")
    current = await _sees_current(intake, viewer, channel_id)
    records = await _history(intake.db, channel_id, limit, before, None if current else time.time())
    results = await _results(intake.db, [r.id for r in records])
    return [
        _out(r, await _counts(intake.redis, intake.topology, intake.db, r.id), results.get(r.id))
        for r in records
    ]


@get("/signals/{signal_id:str}", responses=errors(404))
async def get_signal(signal_id: PathStr, principal: CurrentUser, intake: Intake) -> SignalOut:
    record = await intake.find(signal_id)
    if record is None or not await intake.may_signal(principal, record.channel_id):
        raise NotFound("signal not found")
    results = await _results(intake.db, [signal_id])
    return _out(
        record,
        await _counts(intake.redis, intake.topology, intake.db, signal_id),
        results.get(signal_id),
    )


signal_router = Router(
    path="/api/v1",
    route_handlers=[send_signal, list_signals, get_signal, signal_socket],
    tags=["signals"],
)
