"""Limits on a subscription's risk settings: pure checks shared by create and update."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from apps.api.money import check_amount

MAX_STAKE = Decimal(100_000)
MAX_MULTIPLIER = Decimal(100)
MAX_PERCENT = Decimal(100)
MAX_DAILY_LOSS = Decimal(10_000_000)
MAX_BALANCE_FLOOR = Decimal(100_000_000)


def check_risk(
    stake_mode: str,
    stake: Decimal,
    max_stake: Decimal,
    daily_loss_limit: Decimal | None,
    *,
    balance_floor: Decimal | None = None,
    max_drawdown_percent: Decimal | None = None,
    directions: Sequence[str] = (),
) -> None:
    """Raise ValueError with a field-named message when the combination makes no sense."""
    check_amount("max_stake", max_stake, maximum=MAX_STAKE)
    if stake_mode == "fixed":
        check_amount("stake", stake, maximum=MAX_STAKE)
        if stake > max_stake:
            raise ValueError("stake must not exceed max_stake")
    elif stake_mode == "multiplier":
        check_amount("stake", stake, maximum=MAX_MULTIPLIER)
    elif stake_mode == "percent":
        check_amount("stake", stake, maximum=MAX_PERCENT)
    else:  # pragma: no cover - the schema's Literal already rejects it
        raise ValueError(f"unknown stake_mode {stake_mode!r}")
    if daily_loss_limit is not None:
        check_amount("daily_loss_limit", daily_loss_limit, maximum=MAX_DAILY_LOSS)
    if balance_floor is not None:
        check_amount("balance_floor", balance_floor, maximum=MAX_BALANCE_FLOOR)
    if max_drawdown_percent is not None and not Decimal(0) < max_drawdown_percent <= 100:
        raise ValueError("max drawdown must be between 0 and 100 %")
    if len(set(directions)) != len(directions):
        raise ValueError("directions must not repeat a direction")
