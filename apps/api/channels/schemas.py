"""Bodies of /api/v1/channels (and its delegates and subscribers)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from apps.api.auth.schemas import Email
from apps.api.money import Money, check_amount
from apps.api.text import check_plain_text

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
Description = Annotated[str, msgspec.Meta(max_length=2000)]
PeriodDays = Annotated[int, msgspec.Meta(ge=1, le=3660)]
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
MAX_PRICE = Decimal(1_000_000)


class PlanIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Price per period as a Decimal string ("9.99"); payment itself is out of scope."""

    price: Money
    period_days: PeriodDays
    currency: Currency = "USD"

    def __post_init__(self) -> None:
        check_amount("price", self.price, inclusive_minimum=True, maximum=MAX_PRICE)


class ChannelCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name
    plan: PlanIn
    description: Description = ""

    def __post_init__(self) -> None:
        check_plain_text("name", self.name)
        check_plain_text("description", self.description, multiline=True)


class ChannelUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    plan: PlanIn | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        if self.name is not msgspec.UNSET:
            check_plain_text("name", self.name)
        if self.description is not msgspec.UNSET:
            check_plain_text("description", self.description, multiline=True)


class PlanView(msgspec.Struct, kw_only=True):
    price: Decimal
    currency: str
    period_days: int


class ProviderView(msgspec.Struct, kw_only=True):
    id: str
    display_name: str


class PerformanceView(msgspec.Struct, kw_only=True):
    """Kept by the ledger from every execution of the channel's signals."""

    signals: int
    orders_placed: int
    # Signals won and lost, each by its own outcome (the track record's, all time).
    wins: int
    losses: int
    # wins / (wins + losses), per signal; None until a signal has settled.
    win_rate: Decimal | None
    # Sum of all subscribers' settled profit and loss, in the accounts' currencies.
    pnl: Decimal


class TrackWindowView(msgspec.Struct, kw_only=True):
    """One window of the ledger's track record (`channel_stats.track`), per signal: a
    signal counts once, by its own outcome at its own stake."""

    signals: int = 0
    settled: int = 0
    won: int = 0
    lost: int = 0
    # won / settled; None until a signal has settled.
    win_rate: float | None = None
    # Profit at stake / stakes of the settled signals.
    return_on_stake: Decimal = Decimal(0)
    profit: Decimal = Decimal(0)
    # Largest peak-to-trough fall of the cumulative profit at stake (>= 0).
    max_drawdown: Decimal = Decimal(0)
    avg_delay_ms: float | None = None
    p95_delay_ms: float | None = None


class ChannelView(msgspec.Struct, kw_only=True):
    """A channel's public card: what a prospect compares channels by."""

    id: str
    name: str
    description: str
    provider: ProviderView
    plan: PlanView
    subscriber_count: int
    performance: PerformanceView
    created_at: datetime
    # The ledger's last 30 days and all time; None while the channel has no record.
    track_30d: TrackWindowView | None = None
    track_all: TrackWindowView | None = None
    record_days: int = 0
    # Assets signalled in the last 90 days.
    assets: list[str] = msgspec.field(default_factory=list)


class ChannelPage(msgspec.Struct, kw_only=True):
    """One page of the public listing, and how many channels match in all."""

    items: list[ChannelView]
    page: int
    page_size: int
    total: int


class MyChannelView(msgspec.Struct, kw_only=True):
    role: Literal["owner", "delegate"]
    channel: ChannelView


class DelegateRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: Email


class DelegateView(msgspec.Struct, kw_only=True):
    id: str
    display_name: str
    email: str


class DelegatesView(msgspec.Struct, kw_only=True):
    channel_id: str
    delegates: list[DelegateView]


class SubscriberView(msgspec.Struct, kw_only=True):
    """What an owner sees of a subscriber: who and since when — no broker, no secrets."""

    subscription_id: str
    user: ProviderView
    since: datetime
    expires_at: datetime
    status: Literal["pending_payment", "active", "past_due", "paused", "expired", "cancelled"]
