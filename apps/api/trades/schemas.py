"""A trade as the API and the WebSocket show it, and the pure parts of the trade history.

:class:`TradeOut` is made from an :class:`~apps.core.messages.Execution` (the fast store,
the WebSocket push) or from an order document (MongoDB), and the two are merged by order
id, the newer word's known fields winning. A settled trade keeps state ``placed`` and has
an ``outcome``. Money is a decimal string, times are epoch seconds, unknown is null.

The history's filters are parsed here into one :class:`TradeFilter`; a bad value is one
plain-language sentence, never a traceback.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import msgspec

from apps.core.messages import Execution, ExecutionState

MAX_LIMIT = 500
DEFAULT_LIMIT = 100

OUTCOME_FILTERS = ("won", "lost", "open")
STATE_FILTERS = ("pending", "placed", "rejected", "expired", "failed", "unknown")


class TradeOut(msgspec.Struct, kw_only=True):
    """One trade; the field order is the CSV export's column order."""

    order_id: str
    signal_id: str
    channel_id: str
    subscription_id: str
    broker_kind: str = ""  # "deriv" | "iqoption"; empty for an order recorded before it
    state: str  # pending | placed | rejected | expired | failed | unknown
    reason: str | None = None
    asset: str | None = None
    direction: Literal["CALL", "PUT"] | None = None  # as placed, after a reverse copy
    expiry_seconds: int | None = None
    expiry_at: float | None = None  # epoch seconds the contract ends
    stake: Decimal | None = None
    currency: str | None = None
    contract_id: str | None = None  # the broker's
    buy_price: Decimal | None = None
    payout: Decimal | None = None
    entry_spot: Decimal | None = None
    exit_spot: Decimal | None = None
    outcome: Literal["won", "lost"] | None = None
    profit: Decimal | None = None
    latency_ms: float | None = None  # signal accepted → placed: the copy delay
    signal_created_at: float | None = None
    at: float | None = None  # when the state was reached
    settled_at: float | None = None


COLUMNS: tuple[str, ...] = TradeOut.__struct_fields__


def trade_from_execution(execution: Execution) -> TradeOut:
    """The trade one execution tells of. A settlement reports the trade as placed, with
    its outcome; its ``at`` is the settlement's, so ``at`` (the placement's) stays unknown."""
    e = execution
    settled = e.state is ExecutionState.SETTLED
    return TradeOut(
        order_id=e.order_id,
        signal_id=e.signal_id,
        channel_id=e.channel_id,
        subscription_id=e.subscription_id,
        broker_kind=e.broker_kind,
        state=ExecutionState.PLACED.value if settled else e.state.value,
        reason=e.reason,
        asset=e.asset or None,
        direction=e.direction.value if e.direction else None,
        expiry_seconds=e.expiry_seconds,
        expiry_at=e.expiry_at,
        stake=e.stake,
        currency=e.currency,
        contract_id=e.contract_id,
        buy_price=e.buy_price,
        payout=e.payout,
        entry_spot=e.entry_spot,
        exit_spot=e.exit_spot,
        outcome=e.outcome.value if e.outcome else None,
        profit=e.profit,
        latency_ms=e.latency_ms,
        signal_created_at=e.signal_created_at,
        at=None if settled else e.at,
        settled_at=e.at if settled else None,
    )


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def trade_from_document(doc: Mapping[str, Any]) -> TradeOut:
    """The trade an order document (MongoDB ``orders``) holds; older documents lack the
    trade detail, which is then null."""
    direction = doc.get("direction")
    outcome = doc.get("outcome")
    expiry = doc.get("expiry_seconds")
    return TradeOut(
        order_id=str(doc["_id"]),
        signal_id=doc.get("signal_id") or "",
        channel_id=doc.get("channel_id") or "",
        subscription_id=doc.get("subscription_id") or "",
        broker_kind=doc.get("broker_kind") or "",
        state=doc.get("state") or "pending",
        reason=doc.get("reason"),
        asset=doc.get("asset") or None,
        direction=direction if direction in ("CALL", "PUT") else None,
        expiry_seconds=int(expiry) if isinstance(expiry, int | float) else None,
        expiry_at=_float(doc.get("expiry_at")),
        stake=_decimal(doc.get("stake")),
        currency=doc.get("currency"),
        contract_id=doc.get("contract_id"),
        buy_price=_decimal(doc.get("buy_price")),
        payout=_decimal(doc.get("payout")),
        entry_spot=_decimal(doc.get("entry_spot")),
        exit_spot=_decimal(doc.get("exit_spot")),
        outcome=outcome if outcome in ("won", "lost") else None,
        profit=_decimal(doc.get("profit")),
        latency_ms=_float(doc.get("latency_ms")),
        signal_created_at=_float(doc.get("signal_created_at")),
        at=_float(doc.get("at")),
        settled_at=_float(doc.get("settled_at")),
    )


def merge(base: TradeOut, newer: TradeOut) -> TradeOut:
    """``base`` with every field ``newer`` knows (non-null, non-empty) taken from it."""
    known = {
        name: value
        for name in COLUMNS
        if (value := getattr(newer, name)) is not None and value != ""
    }
    # A settled word says state "placed"; it never turns a placement back into "pending".
    return msgspec.structs.replace(base, **known)


def merge_all(*sources: Iterable[TradeOut]) -> dict[str, TradeOut]:
    """Trades by order id; a later source's (and a later trade's) known fields win."""
    trades: dict[str, TradeOut] = {}
    for source in sources:
        for trade in source:
            held = trades.get(trade.order_id)
            trades[trade.order_id] = trade if held is None else merge(held, trade)
    return trades


# --- filters ------------------------------------------------------------------------------


class FilterError(ValueError):
    """A filter value the history cannot use; the message says why, in plain words."""


class TradeFilter(msgspec.Struct, frozen=True, kw_only=True):
    channel_id: str | None = None
    outcome: Literal["won", "lost", "open"] | None = None
    state: str | None = None
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, exclusive
    limit: int = DEFAULT_LIMIT


def parse_instant(value: str, name: str, *, end_of_day: bool = False) -> float:
    """Epoch seconds from epoch seconds, an ISO date (its midnight UTC, or the next one
    with ``end_of_day``) or an ISO date and time (UTC unless it says its offset)."""
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number) or number < 0:
            raise FilterError(f"{name} must be a date, a date and time, or epoch seconds")
        return number
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return (start + timedelta(days=1) if end_of_day else start).timestamp()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(
            f"{name} must be a date (2026-12-31), a date and time, or epoch seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_filter(
    *,
    channel_id: str | None = None,
    outcome: str | None = None,
    state: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: str | None = None,
) -> TradeFilter | str:
    """The history's filters from the query string, or why one is unusable (one sentence)."""
    try:
        return _parse_filter(channel_id, outcome, state, since, until, limit)
    except FilterError as bad:
        return str(bad)


def _parse_filter(
    channel_id: str | None,
    outcome: str | None,
    state: str | None,
    since: str | None,
    until: str | None,
    limit: str | None,
) -> TradeFilter:
    if outcome is not None and outcome not in OUTCOME_FILTERS:
        raise FilterError("outcome must be won, lost or open")
    if state is not None and state not in STATE_FILTERS:
        raise FilterError(f"state must be one of {', '.join(STATE_FILTERS)}")
    count = DEFAULT_LIMIT
    if limit is not None:
        try:
            count = int(limit)
        except ValueError:
            count = 0
        if not 1 <= count <= MAX_LIMIT:
            raise FilterError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    start = parse_instant(since, "since") if since else None
    end = parse_instant(until, "until", end_of_day=True) if until else None
    if start is not None and end is not None and end <= start:
        raise FilterError("until must be later than since")
    return TradeFilter(
        channel_id=channel_id or None,
        outcome=outcome,  # type: ignore[arg-type]  # checked above
        state=state,
        since=start,
        until=end,
        limit=count,
    )


def when(trade: TradeOut) -> float | None:
    """The instant a trade is dated by: its state's, else its settlement's."""
    return trade.at if trade.at is not None else trade.settled_at


def matches(trade: TradeOut, f: TradeFilter) -> bool:
    if f.channel_id is not None and trade.channel_id != f.channel_id:
        return False
    if f.state is not None and trade.state != f.state:
        return False
    match f.outcome:
        case "won" | "lost":
            if trade.outcome != f.outcome:
                return False
        case "open":
            if trade.state != "placed" or trade.outcome is not None:
                return False
        case None:
            pass
    if f.since is not None or f.until is not None:
        instant = when(trade)
        if instant is None:
            return False
        if f.since is not None and instant < f.since:
            return False
        if f.until is not None and instant >= f.until:
            return False
    return True


def mongo_query(user_id: str, f: TradeFilter) -> dict[str, Any]:
    """The MongoDB ``orders`` query for the filter (re-checked after merging: a stored
    document may be older than the fast store's word)."""
    query: dict[str, Any] = {"user_id": user_id}
    if f.channel_id is not None:
        query["channel_id"] = f.channel_id
    if f.state is not None:
        query["state"] = f.state
    if f.outcome in ("won", "lost"):
        query["outcome"] = f.outcome
    elif f.outcome == "open":
        query["state"] = "placed"
        query["outcome"] = None  # absent or null
    if f.since is not None or f.until is not None:
        span: dict[str, float] = {}
        if f.since is not None:
            span["$gte"] = f.since
        if f.until is not None:
            span["$lt"] = f.until
        query["at"] = span
    return query


def history(trades: Mapping[str, TradeOut], f: TradeFilter) -> list[TradeOut]:
    """The filtered trades, newest first (order ids sort by their signal's time)."""
    kept = [trades[oid] for oid in sorted(trades, reverse=True) if matches(trades[oid], f)]
    return kept[: f.limit]


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def to_csv(trades: Iterable[TradeOut]) -> str:
    """One header row (:data:`COLUMNS`), then one row per trade; null is an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for trade in trades:
        writer.writerow([_cell(getattr(trade, name)) for name in COLUMNS])
    return out.getvalue()
