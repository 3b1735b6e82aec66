"""The trade history's pure parts: a trade from an execution or a document, merging the
fast store's word over MongoDB's, the filters and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import pytest

from apps.api.trades.schemas import (
    COLUMNS,
    TradeFilter,
    TradeOut,
    history,
    matches,
    merge_all,
    mongo_query,
    parse_filter,
    to_csv,
    trade_from_document,
    trade_from_execution,
)
from apps.core.messages import Direction, Execution, ExecutionState, Outcome

T0 = 1_900_000_000.0


def execution(state: ExecutionState, at: float = T0, **extra: object) -> Execution:
    return Execution(
        order_id="SIG1.sub1",
        signal_id="SIG1",
        channel_id="ch1",
        subscription_id="sub1",
        user_id="u1",
        state=state,
        at=at,
        broker_kind="deriv",
        stake=Decimal("2"),
        currency="USD",
        asset="R_100",
        direction=Direction.PUT,
        expiry_seconds=60,
        signal_created_at=T0 - 0.05,
        **extra,  # type: ignore[arg-type]
    )


PLACED = execution(
    ExecutionState.PLACED,
    contract_id="77",
    buy_price=Decimal("2"),
    payout=Decimal("3.90"),
    latency_ms=50.0,
    expiry_at=T0 + 60,
)
SETTLED = execution(
    ExecutionState.SETTLED,
    at=T0 + 61,
    contract_id="77",
    buy_price=Decimal("2"),
    payout=Decimal("3.90"),
    outcome=Outcome.LOST,
    profit=Decimal("-2"),
    entry_spot=Decimal("100.5"),
    exit_spot=Decimal("100.7"),
)


def test_a_settlement_is_the_placed_trade_with_its_outcome() -> None:
    placed = trade_from_execution(PLACED)
    assert (placed.state, placed.at, placed.settled_at) == ("placed", T0, None)
    assert (placed.asset, placed.direction, placed.expiry_seconds) == ("R_100", "PUT", 60)
    settled = trade_from_execution(SETTLED)
    assert (settled.state, settled.outcome, settled.at) == ("placed", "lost", None)
    assert settled.settled_at == T0 + 61
    [merged] = merge_all([placed], [settled]).values()
    assert merged.at == T0 and merged.settled_at == T0 + 61  # each from its own word
    assert (merged.entry_spot, merged.exit_spot) == (Decimal("100.5"), Decimal("100.7"))
    assert (merged.profit, merged.latency_ms, merged.contract_id) == (Decimal("-2"), 50.0, "77")


def test_the_fast_stores_word_wins_over_an_older_document() -> None:
    doc = {
        "_id": "SIG1.sub1",
        "signal_id": "SIG1",
        "channel_id": "ch1",
        "subscription_id": "sub1",
        "state": "placed",
        "stake": "2",
        "asset": "R_100",
        "direction": "PUT",
        "at": T0,
        "latency_ms": 50.0,
    }
    stored = trade_from_document(doc)
    assert stored.outcome is None and stored.stake == Decimal("2")
    [merged] = merge_all([stored], [trade_from_execution(SETTLED)]).values()
    assert merged.outcome == "lost" and merged.at == T0
    # An old document without the detail reads with nulls.
    bare = trade_from_document({"_id": "x", "state": "rejected", "reason": "paused"})
    assert (bare.asset, bare.direction, bare.expiry_seconds, bare.entry_spot) == (
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"outcome": "maybe"}, "outcome must be won, lost or open"),
        ({"state": "settled"}, "state must be one of"),
        ({"limit": "0"}, "limit must be a whole number from 1 to 500"),
        ({"limit": "501"}, "limit must be a whole number from 1 to 500"),
        ({"limit": "ten"}, "limit must be a whole number from 1 to 500"),
        ({"since": "yesterday"}, "since must be a date"),
        ({"until": "-5"}, "until must be a date"),
        ({"since": "2026-12-06", "until": "2026-12-05"}, "until must be later than since"),
    ],
)
def test_a_bad_filter_says_why_in_one_sentence(query: dict[str, str], message: str) -> None:
    answer = parse_filter(**query)
    assert isinstance(answer, str) and answer.startswith(message)


def test_dates_are_whole_days_and_numbers_epoch_seconds() -> None:
    f = parse_filter(since="2026-12-06", until="2026-12-06", outcome="open", limit="5")
    assert isinstance(f, TradeFilter)
    midnight = datetime(2026, 12, 6, tzinfo=UTC).timestamp()
    assert (f.since, f.until, f.limit) == (midnight, midnight + 86400, 5)
    g = parse_filter(since="1800000000", until="2030-01-01T10:00:00Z")
    assert isinstance(g, TradeFilter)
    assert g.since == 1_800_000_000 and g.until == datetime(2030, 1, 1, 10, tzinfo=UTC).timestamp()
    assert parse_filter() == TradeFilter()


def test_filters_keep_the_trades_they_name() -> None:
    placed = trade_from_execution(PLACED)
    won = msgspec.structs.replace(placed, order_id="SIG2.sub1", outcome="won", at=T0 + 100)
    rejected = msgspec.structs.replace(
        placed, order_id="SIG3.sub1", state="rejected", channel_id="ch2", at=T0 + 200
    )
    trades = {t.order_id: t for t in (placed, won, rejected)}

    def ids(**query: str) -> list[str]:
        f = parse_filter(**query)
        assert isinstance(f, TradeFilter)
        return [t.order_id for t in history(trades, f)]

    assert ids() == ["SIG3.sub1", "SIG2.sub1", "SIG1.sub1"]  # newest first
    assert ids(outcome="open") == ["SIG1.sub1"]
    assert ids(outcome="won") == ["SIG2.sub1"]
    assert ids(channel_id="ch2") == ["SIG3.sub1"]
    assert ids(state="placed") == ["SIG2.sub1", "SIG1.sub1"]
    assert ids(since=str(T0 + 50), until=str(T0 + 150)) == ["SIG2.sub1"]
    assert ids(limit="1") == ["SIG3.sub1"]
    undated = TradeOut(order_id="x", signal_id="", channel_id="", subscription_id="", state="")
    assert not matches(undated, TradeFilter(since=1.0))


def test_the_mongodb_query_names_the_same_trades() -> None:
    f = parse_filter(channel_id="ch1", outcome="open", since="100", until="200")
    assert isinstance(f, TradeFilter)
    assert mongo_query("u1", f) == {
        "user_id": "u1",
        "channel_id": "ch1",
        "state": "placed",
        "outcome": None,
        "at": {"$gte": 100.0, "$lt": 200.0},
    }


def test_csv_has_the_columns_in_order_and_one_row_per_trade() -> None:
    [merged] = merge_all([trade_from_execution(PLACED)], [trade_from_execution(SETTLED)]).values()
    rows = list(csv.reader(io.StringIO(to_csv([merged]))))
    assert rows[0] == list(COLUMNS)
    assert COLUMNS[:6] == (
        "order_id",
        "signal_id",
        "channel_id",
        "subscription_id",
        "broker_kind",
        "state",
    )
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["entry_spot"] == "100.5" and row["exit_spot"] == "100.7"
    assert row["reason"] == "" and row["profit"] == "-2" and row["direction"] == "PUT"
    assert len(rows) == 2
