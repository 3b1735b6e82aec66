"""The public listing's query: parsing with plain-language refusals, a total order with
the channels without a record last, filters, pages."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from apps.api.channels.listing import ListQuery, Row, parse_query, select


def w(ret: str = "0", rate: float | None = None, dd: str = "0", signals: int = 0) -> dict[str, Any]:
    return {
        "signals": signals,
        "settled": signals,
        "won": 0,
        "lost": 0,
        "win_rate": rate,
        "return_on_stake": ret,
        "profit": "0",
        "max_drawdown": dd,
    }


def row(cid: str, price: str = "10", subs: int = 0, **stats: Any) -> Row:
    return Row(cid, Decimal(price), subs, stats)


def tracked(ret: str, rate: float | None, dd: str, days: int, assets: list[str]) -> dict[str, Any]:
    window = w(ret, rate, dd, 3)
    return {"track": {"30d": window, "all": window}, "record_days": days, "assets": assets}


ROWS = [
    row("a", "5", 3, **tracked("0.20", 0.5, "4", 40, ["EURUSD"])),
    row("b", "20", 9, **tracked("-0.10", 0.25, "9", 10, ["R_100"])),
    row("c", "0", 1),  # no record yet
    row("d", "12", 0, **tracked("0.35", None, "0", 2, ["EURUSD", "R_100"])),
]


def ids(q: ListQuery) -> list[str]:
    return [r.channel_id for r in select(ROWS, q)[0]]


def query(**raw: str) -> ListQuery:
    parsed = parse_query(raw)
    assert isinstance(parsed, ListQuery), parsed
    return parsed


def test_defaults_are_best_return_first_twenty_a_page() -> None:
    q = query()
    assert (q.sort, q.order, q.page, q.page_size) == ("return_30d", "desc", 1, 20)
    assert ids(q) == ["d", "a", "b", "c"]


@pytest.mark.parametrize(
    ("sort", "order", "expected"),
    [
        ("return_30d", "asc", ["b", "a", "d", "c"]),
        ("win_rate_30d", "desc", ["a", "b", "c", "d"]),  # no settled signal: last, by id
        ("win_rate_30d", "asc", ["b", "a", "c", "d"]),
        ("drawdown_30d", "", ["d", "a", "b", "c"]),  # least drawdown first by default
        ("subscribers", "", ["b", "a", "c", "d"]),
        ("price", "", ["c", "a", "d", "b"]),
        ("price", "desc", ["b", "d", "a", "c"]),
        ("age", "", ["a", "b", "d", "c"]),
        ("signals_30d", "desc", ["a", "b", "d", "c"]),  # ties by id
    ],
)
def test_sorts_put_missing_records_last(sort: str, order: str, expected: list[str]) -> None:
    assert ids(query(sort=sort, order=order)) == expected


def test_filters() -> None:
    assert ids(query(asset="eurusd")) == ["d", "a"]
    assert ids(query(max_price="10", sort="price")) == ["c", "a"]
    assert ids(query(min_win_rate="0.3")) == ["a"]
    assert ids(query(min_record_days="10", sort="age")) == ["a", "b"]
    assert ids(query(min_record_days="0", sort="age")) == ["a", "b", "d"]


def test_pages_cover_every_row_once() -> None:
    pages = [select(ROWS, query(page=str(p), page_size="3", sort="price")) for p in (1, 2, 3)]
    assert [[r.channel_id for r in rows] for rows, _ in pages] == [["c", "a", "d"], ["b"], []]
    assert {total for _, total in pages} == {4}


def test_a_missing_or_malformed_track_is_no_record() -> None:
    odd = [row("x", track={"30d": "garbage"}), row("y", track=None), row("z")]
    assert [r.channel_id for r in select(odd, query(sort="age"))[0]] == ["x", "y", "z"]


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ({"sort": "popularity"}, "sort must be one of return_30d"),
        ({"order": "up"}, "order must be asc or desc"),
        ({"page": "0"}, "page must be a whole number from 1"),
        ({"page": "abc"}, "page must be a whole number"),
        ({"page_size": "500"}, "page_size must be a whole number from 1 to 100"),
        ({"max_price": "cheap"}, "max_price must be an amount"),
        ({"max_price": "-1"}, "max_price must be an amount"),
        ({"max_price": "NaN"}, "max_price must be an amount"),
        ({"min_win_rate": "55"}, "min_win_rate must be a fraction from 0 to 1"),
        ({"min_record_days": "-3"}, "min_record_days must be a whole number"),
        ({"asset": "EUR/USD"}, "asset must be an asset symbol"),
    ],
)
def test_bad_parameters_are_named_in_plain_words(raw: dict[str, str], names: str) -> None:
    message = parse_query(raw)
    assert isinstance(message, str)
    assert message.startswith(names), message
