"""A subscriber's risk rules applied to one signal: pure functions, no I/O.

The stateful rules (trades per day, daily loss) need counters shared by every router;
those are checked atomically in Redis by :mod:`apps.router.counters`, after the pure
rules here have passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from apps.core.messages import Signal
from apps.core.routing import RoutingRecord

CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Sized:
    stake: Decimal


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


def size_stake(
    record: RoutingRecord, signal_stake: Decimal, balance: Decimal | None
) -> Sized | Refused:
    """The subscriber's stake for this signal: their mode, rounded down to cents, capped
    at their max stake (a cap trims, it does not refuse)."""
    if record.stake_mode == "fixed":
        stake = record.stake
    elif record.stake_mode == "multiplier":
        stake = signal_stake * record.stake
    else:  # percent of the broker balance
        if balance is None:
            return Refused("broker balance unknown: verify the broker account")
        stake = balance * record.stake / 100
    stake = min(stake, record.max_stake).quantize(CENT, rounding=ROUND_DOWN)
    if stake <= 0:
        return Refused(f"stake {stake} after sizing is not positive")
    return Sized(stake)


def check_static_rules(record: RoutingRecord, signal: Signal, now: float) -> Refused | None:
    """The rules that need nothing but the record and the signal."""
    if record.paused:
        return Refused(record.paused_reason or "subscription paused")
    if now >= record.expires_at:
        return Refused("subscription expired")
    if record.assets and signal.asset not in record.assets:
        return Refused(f"asset {signal.asset} is not in the subscription's allow-list")
    return None


def needs_counters(record: RoutingRecord) -> bool:
    return record.max_trades_per_day is not None or record.daily_loss_limit is not None
