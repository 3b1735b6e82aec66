"""A channel's track record: the one definition, pure.

The ledger keeps the facts (per signal: its stake, when it was sent, its first settled
order, a histogram of its copy delays) and calls these functions to turn them into what
the API, the marketplace and the dashboard show; nothing else computes a track record.

Guarantees:

- A signal counts once, by its own outcome: the outcome of its first settled order (the
  earliest settlement, ties broken by order id, so redelivery and arrival order cannot
  change it), valued at the signal's stake:
  ``profit_at_stake = signal.stake * order.profit / order.stake``. The number of
  subscribers, their stakes and the orders refused change nothing.
- A window (7, 30, 90 days, all time) holds the signals *sent* in it; its settled, won and
  lost counts, profit and drawdown are those of its signals. Shorter windows hold a
  subset of longer ones, so each count of a shorter window is at most that of a longer.
- ``win_rate`` = won / settled (per signal); ``return_on_stake`` = profit / the stakes of
  the settled signals; ``max_drawdown`` is the largest fall of the cumulative profit from
  an earlier peak (the record starts at 0), always ≥ 0.
- Copy delays (the signal's acceptance → each subscriber's placement) are kept as a
  fixed-bucket histogram, so a signal's delays cost the same whatever its number of
  subscribers and windows merge by adding; the average is exact, the p95 is interpolated
  within its bucket and never above the largest delay seen.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

import msgspec

DAY = 86_400.0
# The windows, in the order shown; None: all time.
WINDOWS: tuple[tuple[str, int | None], ...] = (("7d", 7), ("30d", 30), ("90d", 90), ("all", None))
# Assets a channel is listed under: those it signalled in this many days.
ASSET_DAYS = 90
# Upper bounds (ms) of the delay histogram's buckets; one more bucket holds what is above.
DELAY_BOUNDS_MS: tuple[float, ...] = (
    25,
    50,
    100,
    150,
    200,
    300,
    500,
    750,
    1_000,
    1_500,
    2_000,
    3_000,
    5_000,
    10_000,
    30_000,
    60_000,
)
CENT = Decimal("0.01")
RATIO = Decimal("0.0001")

OutcomeName = Literal["won", "lost"]


def delay_bucket(ms: float) -> int:
    """The histogram bucket of a delay: bucket i holds (bound[i-1], bound[i]]."""
    return bisect_left(DELAY_BOUNDS_MS, ms)


class Delays(msgspec.Struct, frozen=True, kw_only=True):
    """Copy delays of one signal or of a window's signals."""

    n: int = 0
    sum_ms: float = 0.0
    max_ms: float = 0.0
    # One count per bucket (len(DELAY_BOUNDS_MS) + 1), or empty when n == 0.
    buckets: tuple[int, ...] = ()

    def merge(self, other: Delays) -> Delays:
        if not other.n:
            return self
        if not self.n:
            return other
        return Delays(
            n=self.n + other.n,
            sum_ms=self.sum_ms + other.sum_ms,
            max_ms=max(self.max_ms, other.max_ms),
            buckets=tuple(a + b for a, b in zip(self.buckets, other.buckets, strict=True)),
        )

    def average(self) -> float | None:
        return round(self.sum_ms / self.n, 1) if self.n else None

    def p95(self) -> float | None:
        return self.quantile(0.95)

    def quantile(self, q: float) -> float | None:
        """The q-quantile, linearly interpolated within its bucket, at most ``max_ms``."""
        if not self.n:
            return None
        rank = q * self.n
        seen = 0
        for i, count in enumerate(self.buckets):
            if count and seen + count >= rank:
                low = DELAY_BOUNDS_MS[i - 1] if i else 0.0
                high = DELAY_BOUNDS_MS[i] if i < len(DELAY_BOUNDS_MS) else self.max_ms
                high = min(high, self.max_ms)
                low = min(low, high)
                return round(low + (high - low) * (rank - seen) / count, 1)
            seen += count
        return round(self.max_ms, 1)

    def doc(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "sum_ms": self.sum_ms,
            "max_ms": self.max_ms,
            "buckets": list(self.buckets),
        }


def delays_of(values: Iterable[float]) -> Delays:
    """The histogram of some delays (what the ledger accumulates one placement at a time)."""
    buckets = [0] * (len(DELAY_BOUNDS_MS) + 1)
    n, total, top = 0, 0.0, 0.0
    for ms in values:
        buckets[delay_bucket(ms)] += 1
        n, total, top = n + 1, total + ms, max(top, ms)
    return Delays(n=n, sum_ms=total, max_ms=top, buckets=tuple(buckets)) if n else Delays()


def delays_from_hash(values: Mapping[str, str]) -> Delays:
    """A signal's delays from its Redis hash (``delay_n``, ``delay_sum_ms``,
    ``delay_max_ms``, ``delay:b<i>``), as the ledger's book script writes them."""
    n = int(values.get("delay_n", 0) or 0)
    if not n:
        return Delays()
    return Delays(
        n=n,
        sum_ms=float(values.get("delay_sum_ms", 0) or 0),
        max_ms=float(values.get("delay_max_ms", 0) or 0),
        buckets=tuple(
            int(values.get(f"delay:b{i}", 0) or 0) for i in range(len(DELAY_BOUNDS_MS) + 1)
        ),
    )


def delays_from_doc(doc: Mapping[str, Any] | None) -> Delays:
    if not doc or not doc.get("n"):
        return Delays()
    return Delays(
        n=int(doc["n"]),
        sum_ms=float(doc.get("sum_ms", 0)),
        max_ms=float(doc.get("max_ms", 0)),
        buckets=tuple(int(c) for c in doc.get("buckets", ())),
    )


class Settlement(msgspec.Struct, frozen=True, kw_only=True):
    """One settled order of a signal: the candidate for the signal's own outcome."""

    order_id: str
    at: float
    outcome: OutcomeName
    profit: Decimal
    stake: Decimal

    def key(self) -> tuple[float, str]:
        return (self.at, self.order_id)


def first_settlement(candidates: Iterable[Settlement]) -> Settlement | None:
    """The settlement that decides the signal: the earliest, ties by order id."""
    return min(candidates, key=Settlement.key, default=None)


def profit_at_stake(signal_stake: Decimal, settlement: Settlement) -> Decimal:
    """The settled order's profit scaled to the signal's stake, in cents."""
    if not settlement.stake:
        return Decimal(0)
    value = signal_stake * settlement.profit / settlement.stake
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


class SignalResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a signal counts for in its channel's record."""

    signal_id: str
    created_at: float
    stake: Decimal
    asset: str
    outcome: OutcomeName | None = None
    profit_at_stake: Decimal | None = None
    settled_at: float | None = None
    delays: Delays = Delays()


def result_of(
    *,
    signal_id: str,
    created_at: float,
    stake: Decimal,
    asset: str,
    settlement: Settlement | None,
    delays: Delays = Delays(),
) -> SignalResult:
    if settlement is None:
        return SignalResult(
            signal_id=signal_id, created_at=created_at, stake=stake, asset=asset, delays=delays
        )
    return SignalResult(
        signal_id=signal_id,
        created_at=created_at,
        stake=stake,
        asset=asset,
        outcome=settlement.outcome,
        profit_at_stake=profit_at_stake(stake, settlement),
        settled_at=settlement.at,
        delays=delays,
    )


class Window(msgspec.Struct, frozen=True, kw_only=True):
    signals: int
    settled: int
    won: int
    lost: int
    win_rate: float | None
    return_on_stake: Decimal
    profit: Decimal
    max_drawdown: Decimal
    avg_delay_ms: float | None
    p95_delay_ms: float | None

    def doc(self) -> dict[str, Any]:
        """As stored in ``channel_stats.track`` and answered by the API: decimals as text."""
        return {
            "signals": self.signals,
            "settled": self.settled,
            "won": self.won,
            "lost": self.lost,
            "win_rate": self.win_rate,
            "return_on_stake": str(self.return_on_stake),
            "profit": str(self.profit),
            "max_drawdown": str(self.max_drawdown),
            "avg_delay_ms": self.avg_delay_ms,
            "p95_delay_ms": self.p95_delay_ms,
        }


def _settled_in_order(results: Iterable[SignalResult]) -> list[SignalResult]:
    settled = [r for r in results if r.profit_at_stake is not None]
    return sorted(settled, key=lambda r: (r.settled_at or 0.0, r.signal_id))


def max_drawdown(profits: Iterable[Decimal]) -> Decimal:
    """Largest peak-to-trough fall of the running sum of ``profits`` (starting at 0)."""
    total = peak = worst = Decimal(0)
    for p in profits:
        total += p
        peak = max(peak, total)
        worst = max(worst, peak - total)
    return worst


def window(results: Iterable[SignalResult], since: float | None = None) -> Window:
    """The figures of the signals sent at or after ``since`` (all when None)."""
    chosen = [r for r in results if since is None or r.created_at >= since]
    settled = _settled_in_order(chosen)
    won = sum(1 for r in settled if r.outcome == "won")
    lost = sum(1 for r in settled if r.outcome == "lost")
    profits = [r.profit_at_stake for r in settled if r.profit_at_stake is not None]
    profit = sum(profits, Decimal(0)).quantize(CENT)
    staked = sum((r.stake for r in settled), Decimal(0))
    delays = Delays()
    for r in chosen:
        delays = delays.merge(r.delays)
    return Window(
        signals=len(chosen),
        settled=len(settled),
        won=won,
        lost=lost,
        win_rate=won / len(settled) if settled else None,
        return_on_stake=(profit / staked).quantize(RATIO) if staked else Decimal(0).quantize(RATIO),
        profit=profit,
        max_drawdown=max_drawdown(profits).quantize(CENT),
        avg_delay_ms=delays.average(),
        p95_delay_ms=delays.p95(),
    )


def windows(results: Sequence[SignalResult], now: float) -> dict[str, Window]:
    return {
        name: window(results, None if days is None else now - days * DAY) for name, days in WINDOWS
    }


class EquityPoint(msgspec.Struct, frozen=True, kw_only=True):
    at: float
    profit: Decimal  # cumulative, at the signals' stakes
    signal_id: str


def equity(results: Iterable[SignalResult]) -> list[EquityPoint]:
    """The cumulative profit at stake after each settled signal, in settlement order."""
    total = Decimal(0)
    points = []
    for r in _settled_in_order(results):
        assert r.profit_at_stake is not None and r.settled_at is not None
        total += r.profit_at_stake
        points.append(EquityPoint(at=r.settled_at, profit=total, signal_id=r.signal_id))
    return points


def record_days(first_signal_at: float | None, now: float) -> int:
    """Whole days since the channel's first signal (0 without one)."""
    if first_signal_at is None:
        return 0
    return max(0, math.floor((now - first_signal_at) / DAY))


def track_fields(results: Sequence[SignalResult], now: float) -> dict[str, Any]:
    """The track-record fields of a channel's ``channel_stats`` document."""
    first = min((r.created_at for r in results), default=None)
    last = max((r.created_at for r in results), default=None)
    recent = now - ASSET_DAYS * DAY
    return {
        "track": {name: w.doc() for name, w in windows(results, now).items()},
        "first_signal_at": first,
        "last_signal_at": last,
        "record_days": record_days(first, now),
        "assets": sorted({r.asset for r in results if r.created_at >= recent}),
    }


def day_of(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).date().isoformat()


def daily_series(counts: Mapping[str, int], until: date) -> list[tuple[str, int]]:
    """One count per day from the first known day to ``until``: a day without a change
    keeps the count of the day before."""
    if not counts:
        return []
    day = date.fromisoformat(min(counts))
    out = []
    current = 0
    while day <= until:
        current = counts.get(day.isoformat(), current)
        out.append((day.isoformat(), current))
        day += timedelta(days=1)
    return out
