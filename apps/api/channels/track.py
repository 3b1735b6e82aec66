"""A channel's public track record: ``GET /api/v1/channels/{id}/track-record``, and the
daily subscriber series the subscribe and cancel paths keep.

Reads only what the ledger keeps up to date (``channel_stats.track``, the per-signal
``signal_results``) and the ``channel_subscribers`` series — never the orders — so the
answer costs the same however many subscribers copied the channel. Every figure comes
from :mod:`apps.core.track_record`, the one definition the ledger computes with.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
from litestar import get
from odmantic import AIOEngine

from apps.api.channels.schemas import TrackWindowView
from apps.api.channels.service import SUBSCRIBERS, get_active
from apps.api.dependencies import Db, PathStr
from apps.api.openapi import errors
from apps.core.track_record import (
    WINDOWS,
    SignalResult,
    daily_series,
    equity,
    window,
)


class EquityPointView(msgspec.Struct, kw_only=True):
    at: float
    profit: str  # cumulative profit at the signals' stakes after this signal
    signal_id: str


class SubscriberDayView(msgspec.Struct, kw_only=True):
    day: str  # YYYY-MM-DD (UTC)
    count: int


class TrackRecordView(msgspec.Struct, kw_only=True):
    channel_id: str
    windows: dict[str, TrackWindowView]
    first_signal_at: float | None
    record_days: int
    equity: list[EquityPointView]
    subscribers: list[SubscriberDayView]


_EMPTY = window([]).doc()


def window_view(doc: dict[str, Any] | None) -> TrackWindowView:
    # Amounts are stored as decimal strings.
    return msgspec.convert(doc or _EMPTY, TrackWindowView, strict=False)


async def track_record(db: AIOEngine, channel_id: str) -> TrackRecordView:
    stats = await db.database["channel_stats"].find_one({"_id": channel_id}) or {}
    track = stats.get("track") or {}
    cursor = db.database["signal_results"].find(
        {"channel_id": channel_id, "profit_at_stake": {"$ne": None}},
        {
            "created_at": 1,
            "stake": 1,
            "asset": 1,
            "outcome": 1,
            "profit_at_stake": 1,
            "settled_at": 1,
        },
    )
    settled = [
        SignalResult(
            signal_id=doc["_id"],
            created_at=float(doc["created_at"]),
            stake=Decimal(doc["stake"]),
            asset=doc.get("asset", ""),
            outcome=doc["outcome"],
            profit_at_stake=Decimal(doc["profit_at_stake"]),
            settled_at=float(doc["settled_at"]),
        )
        async for doc in cursor
        if doc.get("settled_at") is not None and doc.get("stake") is not None
    ]
    counts = {
        doc["day"]: int(doc["count"])
        async for doc in db.database[SUBSCRIBERS].find({"channel_id": channel_id})
    }
    return TrackRecordView(
        channel_id=channel_id,
        windows={name: window_view(track.get(name)) for name, _ in WINDOWS},
        first_signal_at=stats.get("first_signal_at"),
        record_days=int(stats.get("record_days", 0)),
        equity=[
            EquityPointView(at=p.at, profit=str(p.profit), signal_id=p.signal_id)
            for p in equity(settled)
        ],
        subscribers=[
            SubscriberDayView(day=day, count=count)
            for day, count in daily_series(counts, datetime.now(UTC).date())
        ],
    )


@get("/{channel_id:str}/track-record", responses=errors(404))
async def get_track_record(channel_id: PathStr, db: Db) -> TrackRecordView:
    """The channel's track record (public): windows of 7, 30, 90 days and all time, the
    equity curve at the signals' stakes, and the subscribers per day."""
    channel = await get_active(db, channel_id)
    return await track_record(db, channel.id)
