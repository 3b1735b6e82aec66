"""The public channel listing's query: parsed from the URL, then applied — pure functions.

Guarantees: every bad parameter gets one plain-language message naming it and what it
accepts; the order is total (ties fall back to the channel id, so pages never overlap or
skip a channel between two requests on unchanged data); a channel whose statistic is
absent (no `channel_stats.track` yet, or no settled signal for a win rate) comes after
every channel that has one, whichever the direction, and is dropped by a filter on it.

The listing reads `channels` and `channel_stats` only (the ledger keeps the statistics up
to date as orders settle), so its cost depends on the number of channels, never on the
number of orders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, get_args

Sort = Literal[
    "return_30d", "win_rate_30d", "drawdown_30d", "subscribers", "price", "age", "signals_30d"
]
Order = Literal["asc", "desc"]
SORTS: tuple[str, ...] = get_args(Sort)
DEFAULT_SORT: Sort = "return_30d"
# The natural direction of each key when none is asked for: best first.
DEFAULT_ORDER: dict[str, Order] = {
    "return_30d": "desc",
    "win_rate_30d": "desc",
    "drawdown_30d": "asc",
    "subscribers": "desc",
    "price": "asc",
    "age": "desc",
    "signals_30d": "desc",
}
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_PAGE = 100_000
MAX_RECORD_DAYS = 100_000


@dataclass(frozen=True, slots=True)
class ListQuery:
    sort: Sort = DEFAULT_SORT
    order: Order = "desc"
    asset: str | None = None
    max_price: Decimal | None = None
    min_win_rate: float | None = None
    min_record_days: int | None = None
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


@dataclass(frozen=True, slots=True)
class Row:
    """What the listing sorts and filters a channel by."""

    channel_id: str
    price: Decimal
    subscriber_count: int
    stats: Mapping[str, Any]  # the channel's `channel_stats` document, {} if none


def _whole(name: str, raw: str, low: int, high: int) -> int | str:
    text = raw.strip()
    if not text.isdigit() or not low <= int(text) <= high:
        return f"{name} must be a whole number from {low} to {high}, not {raw!r}"
    return int(text)


def parse_query(raw: Mapping[str, str | None]) -> ListQuery | str:
    """The listing's parameters, or a message saying which one is wrong and why."""
    sort_raw = raw.get("sort")
    sort = DEFAULT_SORT if sort_raw in (None, "") else sort_raw
    if sort not in SORTS:
        return f"sort must be one of {', '.join(SORTS)}, not {sort_raw!r}"
    order_raw = raw.get("order")
    order = DEFAULT_ORDER[sort] if order_raw in (None, "") else order_raw
    if order not in ("asc", "desc"):
        return f"order must be asc or desc, not {order_raw!r}"
    asset_raw = (raw.get("asset") or "").strip()
    asset = asset_raw.upper() or None
    if asset is not None and not (asset.replace("_", "").isalnum() and len(asset) <= 32):
        return f"asset must be an asset symbol such as EURUSD or R_100, not {asset_raw!r}"
    max_price: Decimal | None = None
    if raw.get("max_price") not in (None, ""):
        text = str(raw["max_price"]).strip()
        try:
            max_price = Decimal(text)
        except InvalidOperation:
            max_price = None
        if max_price is None or not max_price.is_finite() or max_price < 0:
            return f"max_price must be an amount such as 10 or 9.99, not {raw['max_price']!r}"
    min_win_rate: float | None = None
    if raw.get("min_win_rate") not in (None, ""):
        text = str(raw["min_win_rate"]).strip()
        try:
            min_win_rate = float(text)
        except ValueError:
            min_win_rate = None
        if min_win_rate is None or not 0 <= min_win_rate <= 1:
            return (
                "min_win_rate must be a fraction from 0 to 1 (0.55 for 55 %), "
                f"not {raw['min_win_rate']!r}"
            )
    min_record_days: int | None = None
    if raw.get("min_record_days") not in (None, ""):
        days = _whole("min_record_days", str(raw["min_record_days"]), 0, MAX_RECORD_DAYS)
        if isinstance(days, str):
            return days
        min_record_days = days
    page = _whole("page", raw.get("page") or "1", 1, MAX_PAGE)
    if isinstance(page, str):
        return page
    page_size = _whole("page_size", raw.get("page_size") or str(DEFAULT_PAGE_SIZE), 1, 100)
    if isinstance(page_size, str):
        return page_size
    return ListQuery(
        sort=sort,  # type: ignore[arg-type]  # checked against SORTS above
        order=order,  # type: ignore[arg-type]  # checked above
        asset=asset,
        max_price=max_price,
        min_win_rate=min_win_rate,
        min_record_days=min_record_days,
        page=page,
        page_size=page_size,
    )


def window(stats: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """One window of the ledger's track record, None while the channel has none."""
    track = stats.get("track")
    if not isinstance(track, Mapping):
        return None
    found = track.get(name)
    return found if isinstance(found, Mapping) else None


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def record_days(stats: Mapping[str, Any]) -> int | None:
    """The age of the record in days; None while the ledger holds no record."""
    if window(stats, "all") is None:
        return None
    days = stats.get("record_days")
    return int(days) if isinstance(days, int | float) and not isinstance(days, bool) else 0


def _from_30d(field: str, convert: Callable[[Any], Any]) -> Callable[[Row], Any]:
    def key(row: Row) -> Any:
        w = window(row.stats, "30d")
        return None if w is None else convert(w.get(field))

    return key


_KEYS: dict[str, Callable[[Row], Any]] = {
    "return_30d": _from_30d("return_on_stake", _decimal),
    "win_rate_30d": _from_30d("win_rate", _number),
    "drawdown_30d": _from_30d("max_drawdown", _decimal),
    "signals_30d": _from_30d("signals", _number),
    "subscribers": lambda row: row.subscriber_count,
    "price": lambda row: row.price,
    "age": lambda row: record_days(row.stats),
}


def matches(row: Row, q: ListQuery) -> bool:
    if q.max_price is not None and row.price > q.max_price:
        return False
    if q.asset is not None:
        assets = row.stats.get("assets")
        if not isinstance(assets, list) or q.asset not in assets:
            return False
    if q.min_win_rate is not None:
        rate = _KEYS["win_rate_30d"](row)
        if rate is None or rate < q.min_win_rate:
            return False
    if q.min_record_days is not None:
        days = record_days(row.stats)
        if days is None or days < q.min_record_days:
            return False
    return True


def select(rows: Iterable[Row], q: ListQuery) -> tuple[list[Row], int]:
    """The page ``q`` asks for, and how many rows match in all."""
    kept = sorted((r for r in rows if matches(r, q)), key=lambda r: r.channel_id)
    key = _KEYS[q.sort]
    keyed = [(key(r), r) for r in kept]
    present = [pair for pair in keyed if pair[0] is not None]
    absent = [r for k, r in keyed if k is None]
    # A stable sort on an id-ordered list: equal keys stay in id order either way.
    present.sort(key=lambda pair: pair[0], reverse=q.order == "desc")
    ordered = [r for _, r in present] + absent
    return ordered[q.offset : q.offset + q.page_size], len(ordered)
