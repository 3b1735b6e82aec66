"""Signals over HTTP: send, list a channel's, read one with its live counts; my orders."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from litestar import Router, get, post
from litestar.params import JSONBody, Parameter
from litestar.status_codes import HTTP_202_ACCEPTED
from odmantic import AIOEngine, query
from redis.asyncio import Redis

from apps.api.dependencies import AccessClaims, CurrentUser, Intake, PathStr
from apps.api.errors import Forbidden, NotFound
from apps.api.openapi import errors
from apps.api.signals.schemas import (
    Counts,
    OrderOut,
    SentByOut,
    SignalAccepted,
    SignalIn,
    SignalOut,
)
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


def _out(record: SignalRecord, stats: dict[str, Any]) -> SignalOut:
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
        sent_by=None
        if record.sent_by is None
        else SentByOut(
            id=record.sent_by["id"],
            display_name=record.sent_by["display_name"],
            role=record.sent_by["role"],  # type: ignore[arg-type]
        ),
    )


@get("/channels/{channel_id:str}/signals", responses=errors(403))
async def list_signals(
    channel_id: PathStr,
    principal: CurrentUser,
    intake: Intake,
    limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    before: Annotated[str | None, Parameter(max_length=64)] = None,
) -> list[SignalOut]:
    """The channel's signals, newest first, with their counts (owner, delegates, admin)."""
    if not await intake.may_signal(principal, channel_id):
        raise Forbidden("only the channel's owner and its delegates see its signals")
    conditions = [SignalRecord.channel_id == channel_id]
    if before:
        conditions.append(SignalRecord.id < before)
    records = await intake.db.find(
        SignalRecord,
        query.and_(*conditions) if len(conditions) > 1 else conditions[0],
        sort=query.desc(SignalRecord.id),
        limit=limit,
    )
    return [_out(r, await _counts(intake.redis, intake.topology, intake.db, r.id)) for r in records]


@get("/signals/{signal_id:str}", responses=errors(404))
async def get_signal(signal_id: PathStr, principal: CurrentUser, intake: Intake) -> SignalOut:
    record = await intake.find(signal_id)
    if record is None or not await intake.may_signal(principal, record.channel_id):
        raise NotFound("signal not found")
    return _out(record, await _counts(intake.redis, intake.topology, intake.db, signal_id))


@get("/orders")
async def my_orders(
    principal: CurrentUser,
    intake: Intake,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
) -> list[OrderOut]:
    """The caller's own trades (as a subscriber), newest first, with outcomes."""
    orders = intake.db.database["orders"]
    cursor = orders.find({"user_id": principal.id}).sort("_id", -1).limit(limit)
    out = []
    async for doc in cursor:
        out.append(
            OrderOut(
                order_id=doc["_id"],
                signal_id=doc.get("signal_id", ""),
                channel_id=doc.get("channel_id", ""),
                subscription_id=doc.get("subscription_id", ""),
                broker_kind=doc.get("broker_kind") or "",
                state=doc.get("state", "pending"),
                reason=doc.get("reason"),
                stake=_dec(doc.get("stake")),
                currency=doc.get("currency"),
                contract_id=doc.get("contract_id"),
                outcome=doc.get("outcome"),
                profit=_dec(doc.get("profit")),
                latency_ms=doc.get("latency_ms"),
                at=doc.get("at"),
                settled_at=doc.get("settled_at"),
            )
        )
    return out


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


signal_router = Router(
    path="/api/v1",
    route_handlers=[send_signal, list_signals, get_signal, my_orders, signal_socket],
    tags=["signals"],
)
