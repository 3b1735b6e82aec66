"""MongoDB documents (odmantic): the source of truth for accounts and permissions.

Ids are sortable strings (:func:`apps.core.ids.new_id`) rather than ObjectIds, so the
same id reads the same in URLs, NATS subjects and Redis keys.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from bson import Decimal128 as BsonDecimal128
from odmantic import Field, Index, Model
from odmantic.bson import Decimal128

from apps.core.ids import new_id
from apps.core.relink import AccountStatus

AccountType = Literal["provider", "subscriber"]
BrokerKind = Literal["deriv", "iqoption"]
# Which of an IQ Option account's balances it trades; Deriv accounts have one (None).
BalanceType = Literal["practice", "real"]
StakeMode = Literal["fixed", "multiplier", "percent"]
ChannelStatus = Literal["active", "deleted"]
# pending_payment: created at checkout, nothing paid yet (never routed); ended: a paid
# subscription the payment provider ended (cancelled at period end, or never paid).
SubscriptionStatus = Literal["pending_payment", "active", "cancelled", "ended"]
# A paid subscription's payment lifecycle (apps.payments.lifecycle); "" for a free plan.
PaymentStatus = Literal["", "pending_payment", "active", "past_due", "paused", "ended"]


class User(Model):
    """An account. Requests see its role through a Redis cache of the facts permissions
    need (:mod:`apps.api.auth.principals`): code that changes ``is_admin`` or
    ``account_type`` must call ``user_changed``, code that deletes a user
    ``user_deleted``. Creating one needs neither (a new id has nothing cached)."""

    id: str = Field(primary_field=True, default_factory=new_id)
    email: str = Field(unique=True)  # stored lower-cased
    password_hash: str
    display_name: str
    account_type: AccountType
    is_admin: bool = False
    created_at: datetime

    model_config = {"collection": "users"}


class RefreshToken(Model):
    """One issued refresh token (its JWT ``jti``); tokens of one login share a family.

    A token is used once: refreshing marks it ``rotated_at``. Seeing a rotated token again
    means it was stolen or replayed, so the whole family is revoked (OAuth 2.0 Security
    BCP, refresh token rotation).
    """

    id: str = Field(primary_field=True)
    family_id: str = Field(index=True)
    user_id: str = Field(index=True)
    issued_at: datetime
    expires_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None

    model_config = {"collection": "refresh_tokens"}


class Channel(Model):
    id: str = Field(primary_field=True, default_factory=new_id)
    owner_id: str = Field(index=True)
    name: str
    description: str = ""
    price: Decimal
    currency: str = "USD"
    period_days: int
    delegates: list[str] = Field(default_factory=list)
    status: ChannelStatus = "active"
    created_at: datetime
    # Kept by the signal/ledger side; shown on the public listing.
    subscriber_count: int = 0
    signals_count: int = 0
    wins: int = 0
    losses: int = 0

    model_config = {"collection": "channels"}


class BrokerAccount(Model):
    """A subscriber's account at a broker; credentials only as AES-GCM ciphertext."""

    id: str = Field(primary_field=True, default_factory=new_id)
    owner_id: str = Field(index=True)
    kind: BrokerKind
    label: str
    currency: str | None = None
    balance: Decimal128 | None = None  # see optional_decimal()
    loginid: str | None = None
    balance_type: BalanceType | None = None
    verified_at: datetime | None = None
    # needs_relink: the broker refused the credentials (apps.core.relink); the reason is
    # the broker's, ``relink_since`` when the ledger saw it.
    status: AccountStatus = "active"
    relink_reason: str = ""
    relink_since: datetime | None = None
    ciphertext: bytes
    nonce: bytes
    key_id: str
    created_at: datetime

    model_config = {"collection": "broker_accounts"}


class Subscription(Model):
    id: str = Field(primary_field=True, default_factory=new_id)
    channel_id: str = Field(index=True)
    subscriber_id: str = Field(index=True)
    broker_account_id: str = Field(index=True)
    status: SubscriptionStatus = "active"
    stake_mode: StakeMode
    stake: Decimal
    max_stake: Decimal
    max_trades_per_day: int | None = None
    daily_loss_limit: Decimal128 | None = None  # see optional_decimal()
    assets: list[str] = Field(default_factory=list)
    paused: bool = False
    # Why it is paused: "" when the subscriber paused it, else the reason the ledger gave
    # (apps.core.relink.relink_pause_reason, which re-linking the account lifts; or
    # apps.core.exposure's "maximum drawdown reached: …", which only the subscriber lifts).
    paused_reason: str = ""
    # The subscriber's limits beyond the stake (apps.core.routing.RoutingRecord): absent
    # from older documents, whose defaults keep their behaviour.
    balance_floor: Decimal128 | None = None
    max_drawdown_percent: Decimal128 | None = None
    round_up_to_min_stake: bool = False
    directions: list[str] = Field(default_factory=list)
    reverse: bool = False
    created_at: datetime
    expires_at: datetime
    cancelled_at: datetime | None = None
    # Paid plans (apps.api.payments): the lifecycle's state, the provider's references,
    # and a version every payment transition bumps, so concurrent webhook deliveries for
    # one subscription never overwrite each other's change.
    payment_status: PaymentStatus = ""
    period_days: int = 0
    provider_subscription_id: str = Field(default="", index=True)
    checkout_session_id: str = ""
    grace_until: datetime | None = None
    failure_reason: str = ""
    cancel_at_period_end: bool = False
    payment_version: int = 0

    model_config = {
        "collection": "subscriptions",
        "indexes": lambda: [Index(Subscription.channel_id, Subscription.status)],
    }


class PaidInvoice(Model):
    """A paid invoice of a paid subscription, as the payment provider reported it: the
    subscriber's receipt and the provider's revenue. ``id`` is the provider's invoice id,
    so a redelivered event writes the same document."""

    id: str = Field(primary_field=True)
    subscription_id: str = Field(index=True)
    subscriber_id: str = Field(index=True)
    channel_id: str = Field(index=True)
    owner_id: str = Field(index=True)
    amount: Decimal
    currency: str
    period_start: datetime
    period_end: datetime
    paid_at: datetime
    url: str = ""

    model_config = {"collection": "paid_invoices"}


class ProcessedPaymentEvent(Model):
    """A payment provider's event already acted on: a redelivery changes nothing."""

    id: str = Field(primary_field=True)
    type: str
    subscription_id: str = ""
    received_at: datetime

    model_config = {"collection": "payment_events"}


def optional_decimal(value: Decimal | Decimal128 | None) -> Decimal | None:
    """odmantic stores ``Decimal`` fine but not ``Decimal | None``; optional amounts are
    declared as BSON Decimal128 and read back through here."""
    if value is None:
        return None
    # Documents read back from MongoDB hold bson's Decimal128, not odmantic's subclass.
    return value.to_decimal() if isinstance(value, BsonDecimal128) else value


ALL_MODELS = (
    User,
    RefreshToken,
    Channel,
    BrokerAccount,
    Subscription,
    PaidInvoice,
    ProcessedPaymentEvent,
)
