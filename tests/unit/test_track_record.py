"""The track record's one definition (apps.core.track_record): examples and properties."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from apps.core.track_record import (
    DAY,
    DELAY_BOUNDS_MS,
    Delays,
    Settlement,
    SignalResult,
    daily_series,
    delays_of,
    equity,
    first_settlement,
    max_drawdown,
    record_days,
    result_of,
    track_fields,
    window,
    windows,
)

NOW = 1_800_000_000.0


def settlement(order_id: str, at: float, profit: str, stake: str = "10") -> Settlement:
    outcome = "won" if Decimal(profit) > 0 else "lost"
    return Settlement(
        order_id=order_id, at=at, outcome=outcome, profit=Decimal(profit), stake=Decimal(stake)
    )


def signal(i: int, profit: str | None, *, age_days: float = 1.0, stake: str = "10") -> SignalResult:
    created = NOW - age_days * DAY
    return result_of(
        signal_id=f"s{i:04d}",
        created_at=created,
        stake=Decimal(stake),
        asset="EURUSD",
        settlement=None if profit is None else settlement(f"s{i}.o", created + 60, profit, stake),
    )


def test_a_signal_is_valued_at_its_own_stake_by_its_first_settled_order() -> None:
    orders = [
        settlement("b", NOW + 2, "-50", stake="50"),  # a later loss at another stake
        settlement("a", NOW + 1, "9.5", stake="5"),  # the first: a win at half the stake
        settlement("c", NOW + 1, "-5", stake="5"),  # same instant, later id
    ]
    first = first_settlement(orders)
    assert first is not None and first.order_id == "a"
    result = result_of(
        signal_id="s", created_at=NOW, stake=Decimal("10"), asset="EURUSD", settlement=first
    )
    assert result.outcome == "won"
    assert result.profit_at_stake == Decimal("19.00")
    assert result.settled_at == NOW + 1


def test_four_signals_two_won_is_fifty_percent() -> None:
    results = [signal(1, "8.5"), signal(2, "-10"), signal(3, "8.5"), signal(4, "-10")]
    w = window(results)
    assert (w.signals, w.settled, w.won, w.lost) == (4, 4, 2, 2)
    assert w.win_rate == 0.5
    assert w.profit == Decimal("-3.00")
    assert w.return_on_stake == Decimal("-0.0750")


def test_unsettled_signals_are_sent_but_not_settled() -> None:
    w = window([signal(1, None), signal(2, "8.5")])
    assert (w.signals, w.settled, w.won, w.win_rate) == (2, 1, 1, 1.0)
    empty = window([signal(1, None)])
    assert empty.win_rate is None and empty.return_on_stake == Decimal("0")
    assert empty.avg_delay_ms is None and empty.p95_delay_ms is None


def test_drawdown_is_the_largest_fall_from_a_peak() -> None:
    steps = [Decimal(x) for x in ("5", "-3", "4", "-8", "2", "10")]
    # 5, 2, 6, -2, 0, 10: the peak 6 falls to -2.
    assert max_drawdown(steps) == Decimal("8")
    assert max_drawdown([Decimal("-4"), Decimal("1")]) == Decimal("4")  # from the start
    assert max_drawdown([]) == 0


def test_windows_hold_the_signals_sent_in_them() -> None:
    results = [
        signal(1, "8", age_days=2),
        signal(2, "-10", age_days=20),
        signal(3, "8", age_days=200),
    ]
    ws = windows(results, NOW)
    assert [ws[k].signals for k in ("7d", "30d", "90d", "all")] == [1, 2, 2, 3]
    assert ws["7d"].win_rate == 1.0 and ws["30d"].win_rate == 0.5


def test_equity_is_cumulative_in_settlement_order() -> None:
    results = [signal(2, "-10", age_days=1), signal(1, "8", age_days=3), signal(3, None)]
    points = equity(results)
    assert [(p.signal_id, p.profit) for p in points] == [
        ("s0001", Decimal("8")),
        ("s0002", Decimal("-2")),
    ]


def test_track_fields_give_the_record_age_and_recent_assets() -> None:
    old = result_of(
        signal_id="old", created_at=NOW - 100 * DAY, stake=Decimal(1), asset="GOLD", settlement=None
    )
    fields = track_fields([old, signal(1, "8", age_days=1.5)], NOW)
    assert fields["record_days"] == 100
    assert fields["assets"] == ["EURUSD"]
    assert fields["first_signal_at"] == NOW - 100 * DAY
    assert set(fields["track"]) == {"7d", "30d", "90d", "all"}
    assert fields["track"]["all"]["profit"] == "8.00"
    assert record_days(None, NOW) == 0


def test_delay_average_is_exact_and_p95_within_its_bucket() -> None:
    d = delays_of([100.0] * 19 + [2_400.0])
    assert d.average() == round((1900 + 2400) / 20, 1)
    p95 = d.p95()
    assert p95 is not None and 50 <= p95 <= 100
    one = delays_of([70_000.0])
    p95 = one.p95()
    assert p95 is not None and DELAY_BOUNDS_MS[-1] <= p95 <= 70_000.0  # capped by the largest
    assert delays_of([]).p95() is None


def test_daily_series_keeps_a_count_until_it_changes() -> None:
    series = daily_series({"2026-01-01": 2, "2026-01-03": 5}, date(2026, 1, 4))
    assert series == [("2026-01-01", 2), ("2026-01-02", 2), ("2026-01-03", 5), ("2026-01-04", 5)]
    assert daily_series({}, date(2026, 1, 1)) == []


# --- properties ---------------------------------------------------------------------

# No deadline: a busy machine's pauses are not a property of the code.
PROPERTY = settings(deadline=None)

profits = st.decimals(
    min_value=-100, max_value=100, places=2, allow_nan=False, allow_infinity=False
)
stakes = st.decimals(min_value=Decimal("0.35"), max_value=500, places=2)
ages = st.floats(min_value=0, max_value=400)
latencies = st.lists(st.floats(min_value=0, max_value=120_000), max_size=30)


@st.composite
def signals(draw: st.DrawFn) -> list[SignalResult]:
    out = []
    for i in range(draw(st.integers(min_value=0, max_value=25))):
        created = NOW - draw(ages) * DAY
        stake = draw(stakes)
        settled = draw(st.booleans())
        first = None
        if settled:
            order_stake = draw(stakes)
            profit = draw(profits)
            if profit == 0:
                profit = Decimal("1")
            first = Settlement(
                order_id=f"o{i}",
                at=created + draw(st.floats(min_value=15, max_value=DAY)),
                outcome="won" if profit > 0 else "lost",
                profit=profit,
                stake=order_stake,
            )
        out.append(
            result_of(
                signal_id=f"s{i:03d}",
                created_at=created,
                stake=stake,
                asset="EURUSD",
                settlement=first,
                delays=delays_of(draw(latencies)),
            )
        )
    return out


@PROPERTY
@given(
    outcomes=st.lists(st.booleans(), min_size=1, max_size=20),
    subscribers=st.integers(min_value=1, max_value=50),
    rejected=st.integers(min_value=0, max_value=50),
    order_stake=stakes,
)
def test_a_signal_counts_once_whatever_its_subscribers(
    outcomes: list[bool], subscribers: int, rejected: int, order_stake: Decimal
) -> None:
    """Each signal's orders (several subscribers, all with its outcome, some refused):
    the window counts signals, and its win rate is signals won / signals settled."""
    results = []
    for i, won in enumerate(outcomes):
        orders = [
            Settlement(
                order_id=f"s{i}.sub{k}",
                at=NOW + i * 100 + k,
                outcome="won" if won else "lost",
                profit=order_stake * Decimal("0.9") if won else -order_stake,
                stake=order_stake,
            )
            for k in range(subscribers)  # refused orders never settle: nothing to add
        ]
        assert rejected >= 0
        results.append(
            result_of(
                signal_id=f"s{i}",
                created_at=NOW - DAY,
                stake=Decimal(10),
                asset="EURUSD",
                settlement=first_settlement(orders),
            )
        )
    w = window(results)
    assert w.signals == w.settled == len(outcomes)
    assert w.won == sum(outcomes)
    assert w.win_rate == sum(outcomes) / len(outcomes)
    assert w.profit == Decimal("9.00") * sum(outcomes) - Decimal(10) * (
        len(outcomes) - sum(outcomes)
    )


@PROPERTY
@given(signals())
def test_windows_nest(results: list[SignalResult]) -> None:
    ws = windows(results, NOW)
    names = ("7d", "30d", "90d", "all")
    for field in ("signals", "settled", "won", "lost"):
        counts = [getattr(ws[n], field) for n in names]
        assert counts == sorted(counts), field
    for n in names:
        w = ws[n]
        assert w.won + w.lost == w.settled <= w.signals
        assert w.max_drawdown >= 0
        if w.win_rate is not None:
            assert 0 <= w.win_rate <= 1


@PROPERTY
@given(st.lists(profits.filter(lambda p: p >= 0), max_size=40))
def test_drawdown_is_zero_for_a_curve_that_never_falls(gains: list[Decimal]) -> None:
    assert max_drawdown(gains) == 0


@PROPERTY
@given(st.lists(profits, max_size=40))
def test_drawdown_is_never_negative_and_bounded_by_the_losses(steps: list[Decimal]) -> None:
    dd = max_drawdown(steps)
    assert 0 <= dd <= -sum((s for s in steps if s < 0), Decimal(0))


@PROPERTY
@given(st.lists(latencies, max_size=10))
def test_delays_merge_as_if_kept_together(parts: list[list[float]]) -> None:
    merged = Delays()
    for p in parts:
        merged = merged.merge(delays_of(p))
    together = delays_of([x for p in parts for x in p])
    assert merged.n == together.n and merged.buckets == together.buckets
    if together.n:
        p95 = merged.p95()
        assert p95 is not None and 0 <= p95 <= together.max_ms
        assert len(merged.buckets) == len(DELAY_BOUNDS_MS) + 1
