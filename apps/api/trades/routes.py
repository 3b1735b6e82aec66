"""/api/v1/orders and /api/v1/orders.csv: the caller's trades, whole at once.

Recent trades come from the ledger's fast store (Valkey, apps.core.recent_trades: written
before MongoDB), older ones from MongoDB's ``orders``; the two are merged by order id, the
fast store's known fields winning, and the filters apply to the merged trade, so a trade
placed a moment ago is listed (and filtered) as it is now, however far MongoDB lags.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Response, Router, get
from litestar.params import QueryParameter
from motor.motor_asyncio import AsyncIOMotorDatabase
from redis.asyncio import Redis

from apps.api.dependencies import CurrentUser, Db, RedisClient, TopologyDep
from apps.api.errors import BadRequest
from apps.api.openapi import errors
from apps.api.trades.schemas import (
    MAX_LIMIT,
    OUTCOME_FILTERS,
    STATE_FILTERS,
    TradeFilter,
    TradeOut,
    history,
    merge_all,
    mongo_query,
    parse_filter,
    to_csv,
    trade_from_document,
    trade_from_execution,
)
from apps.core.recent_trades import recent_of_user
from apps.core.topology import Topology

ChannelQ = Annotated[str | None, QueryParameter(description="Only this channel's trades.")]
OutcomeQ = Annotated[
    str | None, QueryParameter(description=f"One of {', '.join(OUTCOME_FILTERS)}.")
]
# "state" is a name Litestar reserves for the app's state: the query parameter is renamed.
StateQ = Annotated[
    str | None, QueryParameter(name="state", description=f"One of {', '.join(STATE_FILTERS)}.")
]
SinceQ = Annotated[
    str | None,
    QueryParameter(
        description="From this instant: an ISO date (UTC midnight), date-time, or epoch s."
    ),
]
UntilQ = Annotated[
    str | None,
    QueryParameter(description="Before this instant; an ISO date includes that whole day (UTC)."),
]
LimitQ = Annotated[str | None, QueryParameter(description=f"1..{MAX_LIMIT}, default 100.")]


async def trades_of(
    user_id: str, f: TradeFilter, db: AsyncIOMotorDatabase[Any], redis: Redis, topology: Topology
) -> list[TradeOut]:
    """The user's trades that pass ``f``, newest first, at most ``f.limit``."""
    fresh = [trade_from_execution(e) for e in await recent_of_user(redis, topology, user_id)]
    # Enough stored documents that those the fast store's word filters out still leave
    # ``limit`` trades.
    cursor = db["orders"].find(mongo_query(user_id, f)).sort("_id", -1).limit(f.limit + len(fresh))
    stored = [trade_from_document(doc) async for doc in cursor]
    return history(merge_all(stored, fresh), f)


def _filter(
    channel_id: str | None,
    outcome: str | None,
    state: str | None,
    since: str | None,
    until: str | None,
    limit: str | None,
) -> TradeFilter:
    match parse_filter(
        channel_id=channel_id,
        outcome=outcome,
        state=state,
        since=since,
        until=until,
        limit=limit,
    ):
        case str(message):
            raise BadRequest(message)
        case TradeFilter() as f:
            return f


@get("/orders", responses=errors(400))
async def my_orders(
    principal: CurrentUser,
    db: Db,
    redis: RedisClient,
    topology: TopologyDep,
    channel_id: ChannelQ = None,
    outcome: OutcomeQ = None,
    state_filter: StateQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
    limit: LimitQ = None,
) -> list[TradeOut]:
    """The caller's own trades (as a subscriber), newest first, with their detail."""
    f = _filter(channel_id, outcome, state_filter, since, until, limit)
    return await trades_of(principal.id, f, db.database, redis, topology)


@get("/orders.csv", responses=errors(400), media_type="text/csv")
async def my_orders_csv(
    principal: CurrentUser,
    db: Db,
    redis: RedisClient,
    topology: TopologyDep,
    channel_id: ChannelQ = None,
    outcome: OutcomeQ = None,
    state_filter: StateQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
    limit: LimitQ = None,
) -> Response[str]:
    """The same trades as ``GET /orders`` with the same filters, as a CSV attachment."""
    f = _filter(channel_id, outcome, state_filter, since, until, limit)
    trades = await trades_of(principal.id, f, db.database, redis, topology)
    return Response(
        to_csv(trades),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="trades.csv"'},
    )


trade_router = Router(path="/api/v1", route_handlers=[my_orders, my_orders_csv], tags=["trades"])
