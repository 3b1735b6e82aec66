"""Bodies of subscriptions: one subscriber copying one channel to one broker account."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from apps.api.money import Money
from apps.api.subscriptions.risk import check_risk

StakeMode = Literal["fixed", "multiplier", "percent"]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Asset = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_]{1,32}$")]
Assets = Annotated[list[Asset], msgspec.Meta(max_length=200)]
TradesPerDay = Annotated[int, msgspec.Meta(ge=1, le=10_000)]
Direction = Literal["CALL", "PUT"]
Directions = Annotated[list[Direction], msgspec.Meta(max_length=2)]


class SubscriptionCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    broker_account_id: Id
    # fixed: stake in the account's currency; multiplier: times the signal's stake;
    # percent: % of the broker balance.
    stake_mode: StakeMode
    stake: Money
    max_stake: Money
    max_trades_per_day: TradesPerDay | None = None
    daily_loss_limit: Money | None = None
    # Empty or absent: every asset the channel signals.
    assets: Assets | None = None
    paused: bool = False
    # Stop copying while the broker balance is below this amount.
    balance_floor: Money | None = None
    # Pause the subscription once the balance is this % below the account's peak.
    max_drawdown_percent: Money | None = None
    # Raise a stake below the broker's minimum to it (never above max_stake).
    round_up_to_min_stake: bool = False
    # The directions copied; empty or absent: both.
    directions: Directions | None = None
    # Place the opposite direction of each signal.
    reverse: bool = False

    def __post_init__(self) -> None:
        check_risk(
            self.stake_mode,
            self.stake,
            self.max_stake,
            self.daily_loss_limit,
            balance_floor=self.balance_floor,
            max_drawdown_percent=self.max_drawdown_percent,
            directions=self.directions or (),
        )


class SubscriptionUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Only the fields sent change; the merged settings are checked again as a whole."""

    broker_account_id: Id | msgspec.UnsetType = msgspec.UNSET
    stake_mode: StakeMode | msgspec.UnsetType = msgspec.UNSET
    stake: Money | msgspec.UnsetType = msgspec.UNSET
    max_stake: Money | msgspec.UnsetType = msgspec.UNSET
    max_trades_per_day: TradesPerDay | msgspec.UnsetType | None = msgspec.UNSET
    daily_loss_limit: Money | msgspec.UnsetType | None = msgspec.UNSET
    assets: Assets | msgspec.UnsetType | None = msgspec.UNSET
    paused: bool | msgspec.UnsetType = msgspec.UNSET
    balance_floor: Money | msgspec.UnsetType | None = msgspec.UNSET
    max_drawdown_percent: Money | msgspec.UnsetType | None = msgspec.UNSET
    round_up_to_min_stake: bool | msgspec.UnsetType = msgspec.UNSET
    directions: Directions | msgspec.UnsetType | None = msgspec.UNSET
    reverse: bool | msgspec.UnsetType = msgspec.UNSET


class SubscriptionView(msgspec.Struct, kw_only=True):
    id: str
    channel_id: str
    broker_account_id: str
    stake_mode: StakeMode
    stake: Decimal
    max_stake: Decimal
    max_trades_per_day: int | None
    daily_loss_limit: Decimal | None
    assets: list[str]
    paused: bool
    # Why it is paused: "" when the subscriber paused it (or it is not paused); a reason
    # starting "maximum drawdown reached" is lifted by resuming (PATCH paused=false).
    paused_reason: str
    # pending_payment: a paid plan's checkout is not paid yet; past_due: a payment failed
    # and the grace period runs (copying goes on); paused with a "payment failed: …"
    # reason once it is over.
    status: Literal["pending_payment", "active", "past_due", "paused", "expired", "cancelled"]
    created_at: datetime
    expires_at: datetime
    # Paid plans: the payment lifecycle ("" for a free plan), whether it ends at
    # expires_at instead of renewing, and when an unpaid subscription is paused.
    payment_status: str = ""
    cancel_at_period_end: bool = False
    grace_until: datetime | None = None
    balance_floor: Decimal | None = None
    max_drawdown_percent: Decimal | None = None
    round_up_to_min_stake: bool = False
    directions: list[Direction] = msgspec.field(default_factory=list)
    reverse: bool = False
