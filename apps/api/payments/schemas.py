"""Bodies of the payment routes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec


class CheckoutView(msgspec.Struct, kw_only=True):
    # The payment provider's page where the subscriber pays; send the browser there.
    checkout_url: str


class RevenuePeriod(msgspec.Struct, kw_only=True):
    period: str  # YYYY-MM, of the payments' dates
    amount: Decimal
    invoices: int


class SubscriberCounts(msgspec.Struct, kw_only=True):
    active: int
    past_due: int
    paused: int
    expired: int


class ChannelRevenue(msgspec.Struct, kw_only=True):
    channel_id: str
    name: str
    currency: str
    price: Decimal
    total: Decimal
    periods: list[RevenuePeriod]
    subscribers: SubscriberCounts


class RevenueView(msgspec.Struct, kw_only=True):
    channels: list[ChannelRevenue]


class Receipt(msgspec.Struct, kw_only=True):
    id: str
    subscription_id: str
    channel_id: str
    channel_name: str
    amount: Decimal
    currency: str
    period_start: datetime
    period_end: datetime
    paid_at: datetime
    # The provider's hosted invoice (receipt) page.
    url: str


class WebhookAnswer(msgspec.Struct, kw_only=True):
    received: bool
    # False when the event was acted on before: a redelivery changes nothing.
    applied: bool
