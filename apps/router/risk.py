"""A subscriber's risk rules applied to one signal: pure functions, no I/O.

The stateful rules (trades per day, the daily loss limit with the stakes of open trades)
need counters shared by every router; those are checked atomically in Redis by
:mod:`apps.router.counters`, after the pure rules here have passed. The rules that read
the broker balance (percent stakes, the balance floor, the maximum drawdown) take it and
the account's peak from the one HMGET the router makes per slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from apps.core.exposure import drawdown_reason
from apps.core.messages import Direction, Signal
from apps.core.routing import RoutingRecord

CENT = Decimal("0.01")
OPPOSITE = {Direction.CALL: Direction.PUT, Direction.PUT: Direction.CALL}


@dataclass(frozen=True, slots=True)
class Sized:
    stake: Decimal


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


@dataclass(frozen=True, slots=True)
class Balance:
    """The broker account's last known balance and the highest it has been."""

    amount: Decimal
    peak: Decimal | None = None


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
    if record.directions and signal.direction not in record.directions:
        only = " and ".join(record.directions)
        return Refused(
            f"{signal.direction} signals are not copied: this subscription copies {only} only"
        )
    return None


def check_balance_rules(record: RoutingRecord, balance: Balance | None) -> Refused | None:
    """The balance floor and the maximum drawdown: copying stops while the balance is
    below the floor, and once it is the limit's % below its peak (the ledger then pauses
    the subscription for good, until its subscriber resumes it)."""
    if record.balance_floor is None and record.max_drawdown_percent is None:
        return None
    if balance is None:
        return Refused("broker balance unknown: verify the broker account")
    if record.balance_floor is not None and balance.amount < record.balance_floor:
        return Refused(
            f"balance {balance.amount:,.2f} is below your floor of {record.balance_floor:,.2f}: "
            "copying stops until it is back above"
        )
    if record.max_drawdown_percent is not None:
        reason = drawdown_reason(balance.amount, balance.peak, record.max_drawdown_percent)
        if reason is not None:
            return Refused(reason)
    return None


def placed_direction(record: RoutingRecord, direction: Direction) -> Direction:
    """The direction the order takes: the signal's, or its opposite for a reverse copy."""
    return OPPOSITE[direction] if record.reverse else direction


def needs_counters(record: RoutingRecord) -> bool:
    return record.max_trades_per_day is not None or record.daily_loss_limit is not None
