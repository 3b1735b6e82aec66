"""Bodies of /api/v1/broker-accounts. Credentials go in, never come out."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from apps.api.text import check_plain_text

Label = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z]{3,8}$")]


class CredentialsIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``{token}`` for Deriv; ``{login, password}`` or ``{token}`` (an ssid) for IQ Option
    (checked against kind)."""

    # Deriv tokens match ^[\w\-]{1,128}$ (authorize's schema); an IQ Option ssid is
    # checked more narrowly by the service.
    token: Annotated[str, msgspec.Meta(pattern=r"^[\w\-]{1,128}$")] | None = None
    login: Annotated[str, msgspec.Meta(min_length=1, max_length=254)] | None = None
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None

    def __repr__(self) -> str:
        return "CredentialsIn(<redacted>)"


class BrokerAccountCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    kind: Literal["deriv", "iqoption"]
    label: Label
    credentials: CredentialsIn
    # Learnt from the broker by `verify`; stating it only fills the gap until then.
    currency: Currency | None = None
    # IQ Option only: which balance the account trades (default "practice").
    balance_type: Literal["practice", "real"] | None = None

    def __post_init__(self) -> None:
        check_plain_text("label", self.label)


class BrokerAccountRelink(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """New credentials for an account, of the shape its kind takes when it is linked."""

    credentials: CredentialsIn


class BrokerAccountView(msgspec.Struct, kw_only=True):
    id: str
    kind: Literal["deriv", "iqoption"]
    label: str
    currency: str | None
    balance: Decimal | None
    loginid: str | None
    balance_type: Literal["practice", "real"] | None
    verified_at: datetime | None
    # needs_relink: the broker refused the credentials; its subscriptions are paused
    # until new ones are given (PUT .../credentials).
    status: Literal["active", "needs_relink"]
    relink_reason: str
    relink_since: datetime | None
    created_at: datetime
